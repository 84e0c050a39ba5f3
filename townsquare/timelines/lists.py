"""Lists: named sets of followed accounts, each read as its own timeline.

List timelines are read on demand (statuses by the list's members), so adding or removing a
member changes the timeline at once and no fan-out is spent on lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.api.errors import not_found, unprocessable
from townsquare.api.pagination import Page
from townsquare.graph.models import Follow
from townsquare.ids import new_id
from townsquare.privacy import hidden_account_ids, not_hidden
from townsquare.statuses.models import Status
from townsquare.timelines.feed_store import insert_ignoring_duplicates
from townsquare.timelines.filters import (
    follows,
    follows_author,
    not_a_reply_to_others,
    with_viewable_reblogs,
)
from townsquare.timelines.models import ListMember, UserList
from townsquare.timelines.recipients import HOME_VISIBILITIES
from townsquare.timelines.schemas import ListChanges, ListDraft

MAX_LISTS = 50
MAX_MEMBERS = 1000


async def lists_of(session: AsyncSession, owner_id: int) -> list[UserList]:
    rows = await session.scalars(
        select(UserList).where(UserList.account_id == owner_id).order_by(UserList.id)
    )
    return list(rows.all())


async def get_list(session: AsyncSession, owner_id: int, list_id: int) -> UserList:
    """The owner's list; anybody else's is simply not found."""
    found = await session.scalar(
        select(UserList).where(UserList.id == list_id, UserList.account_id == owner_id)
    )
    if found is None:
        raise not_found()
    return found


async def create_list(session: AsyncSession, owner_id: int, draft: ListDraft) -> UserList:
    count = await session.scalar(
        select(func.count()).select_from(UserList).where(UserList.account_id == owner_id)
    )
    if (count or 0) >= MAX_LISTS:
        raise unprocessable(f"you cannot have more than {MAX_LISTS} lists")
    created = UserList(
        id=new_id(),
        account_id=owner_id,
        title=draft.title,
        replies_policy=draft.replies_policy,
        exclusive=draft.exclusive,
    )
    session.add(created)
    await session.flush()
    return created


async def update_list(
    session: AsyncSession, owner_id: int, list_id: int, changes: ListChanges
) -> UserList:
    target = await get_list(session, owner_id, list_id)
    if changes.title is not None:
        target.title = changes.title
    if changes.replies_policy is not None:
        target.replies_policy = changes.replies_policy
    if changes.exclusive is not None:
        target.exclusive = changes.exclusive
    await session.flush()
    return target


async def delete_list(session: AsyncSession, owner_id: int, list_id: int) -> None:
    target = await get_list(session, owner_id, list_id)
    await session.delete(target)


async def member_page(session: AsyncSession, target: UserList, page: Page | None) -> list[Account]:
    """Members, newest id first; ``page`` None means all of them (Mastodon's ``limit=0``)."""
    query = (
        select(Account)
        .join(ListMember, ListMember.account_id == Account.id)
        .where(ListMember.list_id == target.id, Account.suspended_at.is_(None))
    )
    if page is None:
        return list((await session.scalars(query.order_by(Account.id.desc()))).all())
    return page.finish((await session.scalars(page.apply(query, Account.id))).all())


async def add_members(
    session: AsyncSession, owner_id: int, list_id: int, account_ids: Sequence[int]
) -> None:
    target = await get_list(session, owner_id, list_id)
    wanted = set(account_ids)
    if not wanted:
        raise unprocessable("account_ids must name at least one account")
    existing = set((await session.scalars(select(Account.id).where(Account.id.in_(wanted)))).all())
    if existing != wanted:
        raise not_found()
    followed = set(
        (
            await session.scalars(
                select(Follow.target_account_id).where(
                    Follow.account_id == owner_id, Follow.target_account_id.in_(wanted)
                )
            )
        ).all()
    )
    if followed != wanted:
        raise unprocessable("you can only add accounts you follow to a list")
    count = await session.scalar(
        select(func.count()).select_from(ListMember).where(ListMember.list_id == target.id)
    )
    if (count or 0) + len(wanted) > MAX_MEMBERS:
        raise unprocessable(f"a list holds at most {MAX_MEMBERS} accounts")
    await insert_ignoring_duplicates(
        session, ListMember, [{"list_id": target.id, "account_id": a} for a in sorted(wanted)]
    )


async def remove_members(
    session: AsyncSession, owner_id: int, list_id: int, account_ids: Sequence[int]
) -> None:
    target = await get_list(session, owner_id, list_id)
    if account_ids:
        await session.execute(
            delete(ListMember).where(
                ListMember.list_id == target.id, ListMember.account_id.in_(set(account_ids))
            )
        )


async def lists_containing(session: AsyncSession, owner_id: int, account_id: int) -> list[UserList]:
    rows = await session.scalars(
        select(UserList)
        .join(ListMember, ListMember.list_id == UserList.id)
        .where(UserList.account_id == owner_id, ListMember.account_id == account_id)
        .order_by(UserList.id)
    )
    return list(rows.all())


async def list_timeline(
    session: AsyncSession, owner_id: int, list_id: int, page: Page
) -> list[Status]:
    target = await get_list(session, owner_id, list_id)
    hidden = await hidden_account_ids(session, owner_id)
    members = select(ListMember.account_id).where(ListMember.list_id == target.id)
    query = select(Status).where(
        Status.account_id.in_(members),
        Status.visibility.in_(HOME_VISIBILITIES),
        # Members must still be followed: an unfollow ends their private statuses here too.
        follows_author(owner_id),
        _replies_allowed(target, owner_id, members),
        not_hidden(hidden),
    )
    query = with_viewable_reblogs(query, hidden)
    return page.finish((await session.scalars(page.apply(query, Status.id))).all())


def _replies_allowed(target: UserList, owner_id: int, members: Select[Any]) -> ColumnElement[bool]:
    if target.replies_policy == "followed":
        return or_(
            not_a_reply_to_others(),
            Status.in_reply_to_account_id == owner_id,
            Status.in_reply_to_account_id.in_(follows(owner_id)),
        )
    if target.replies_policy == "list":
        return or_(not_a_reply_to_others(), Status.in_reply_to_account_id.in_(members))
    return not_a_reply_to_others()
