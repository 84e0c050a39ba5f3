"""Who receives a status: home feeds, list streams and public streams.

The rules follow Mastodon's home feed: followers see what they may see (private statuses reach
followers only, direct statuses no home feed at all); followers who muted or blocked the author,
or were blocked by them, get nothing; a reply to someone else reaches only those who also follow
that someone; reblogs respect ``show_reblogs`` and are skipped where the original already is;
public statuses also reach those who follow one of their hashtags.
Authors with many followers are pulled at read time instead (see ``home.py``).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.db.base import utcnow
from townsquare.graph.models import Block, Follow, Mute
from townsquare.statuses.models import Status, StatusTag, Tag, TagFollow
from townsquare.timelines.models import HomeFeedEntry, ListMember, UserList

HOME_VISIBILITIES = ("public", "unlisted", "private")


def is_reply_to_other(status: Status) -> bool:
    return status.in_reply_to_account_id not in (None, status.account_id)


async def is_pulled_author(session: AsyncSession, account_id: int, threshold: int) -> bool:
    """Whether the author's statuses are merged into home timelines at read time."""
    count = await session.scalar(select(Account.followers_count).where(Account.id == account_id))
    return count is not None and count >= threshold


async def accounts_hiding(session: AsyncSession, author_ids: Collection[int]) -> set[int]:
    """Accounts that muted or blocked any of ``author_ids``, or that any of them blocked."""
    now = utcnow()
    muting = select(Mute.account_id).where(
        Mute.target_account_id.in_(author_ids),
        or_(Mute.expires_at.is_(None), Mute.expires_at > now),
    )
    blocking = select(Block.account_id).where(Block.target_account_id.in_(author_ids))
    blocked = select(Block.target_account_id).where(Block.account_id.in_(author_ids))
    hiding: set[int] = set()
    for query in (muting, blocking, blocked):
        hiding.update((await session.scalars(query)).all())
    return hiding


async def _followers(session: AsyncSession, account_id: int) -> dict[int, bool]:
    rows = await session.execute(
        select(Follow.account_id, Follow.show_reblogs).where(Follow.target_account_id == account_id)
    )
    return {row.account_id: row.show_reblogs for row in rows}


async def _with_original_in_feed(session: AsyncSession, original_id: int) -> set[int]:
    """Feeds that already hold ``original_id`` or another reblog of it."""
    direct = select(HomeFeedEntry.account_id).where(HomeFeedEntry.status_id == original_id)
    via_reblog = (
        select(HomeFeedEntry.account_id)
        .join(Status, Status.id == HomeFeedEntry.status_id)
        .where(Status.reblog_of_id == original_id)
    )
    holders = set((await session.scalars(direct)).all())
    holders.update((await session.scalars(via_reblog)).all())
    return holders


async def _exclusive_list_owners(session: AsyncSession, author_id: int) -> set[int]:
    """Owners of exclusive lists containing the author: they read the author in the list only."""
    rows = await session.scalars(
        select(UserList.account_id)
        .join(ListMember, ListMember.list_id == UserList.id)
        .where(ListMember.account_id == author_id, UserList.exclusive.is_(True))
    )
    return set(rows.all())


async def home_recipients(
    session: AsyncSession, status: Status, *, pull_threshold: int
) -> list[int]:
    """Accounts whose home feed gets ``status``, the author first."""
    if status.visibility not in HOME_VISIBILITIES:
        return []
    author_id = status.account_id
    recipients = [author_id]
    if await is_pulled_author(session, author_id, pull_threshold):
        return recipients
    followers = await _followers(session, author_id)
    candidates = set(followers) - {author_id}
    if not candidates:
        return recipients

    watched = {author_id}
    original: Status | None = None
    if status.reblog_of_id is not None:
        original = await session.get(Status, status.reblog_of_id)
        if original is None or original.visibility not in ("public", "unlisted"):
            return recipients
        watched.add(original.account_id)
        # Nobody needs their own status back in their timeline as someone else's reblog.
        candidates = {a for a in candidates if followers[a] and a != original.account_id}

    candidates -= await accounts_hiding(session, watched)
    if is_reply_to_other(status):
        reply_target = status.in_reply_to_account_id
        assert reply_target is not None
        also_following = await _followers(session, reply_target)
        candidates &= set(also_following) | {reply_target}
    candidates -= await _exclusive_list_owners(session, author_id)
    if original is not None and candidates:
        candidates -= await _with_original_in_feed(session, original.id)
    return recipients + sorted(candidates)


async def list_audience(session: AsyncSession, status: Status) -> list[int]:
    """Lists whose stream gets ``status`` (list timelines themselves are read on demand)."""
    if status.visibility not in HOME_VISIBILITIES:
        return []
    author_id = status.account_id
    rows = (
        await session.execute(
            select(UserList.id, UserList.account_id, UserList.replies_policy)
            .join(ListMember, ListMember.list_id == UserList.id)
            .where(ListMember.account_id == author_id)
        )
    ).all()
    if not rows:
        return []
    hiding = await accounts_hiding(session, {author_id})
    following = set(
        (
            await session.scalars(
                select(Follow.account_id).where(Follow.target_account_id == author_id)
            )
        ).all()
    )
    reply_target = status.in_reply_to_account_id if is_reply_to_other(status) else None
    audience = []
    for list_id, owner_id, policy in rows:
        if owner_id in hiding or owner_id not in following:
            continue
        if reply_target is not None and not await _list_shows_reply(
            session, list_id, owner_id, policy, reply_target
        ):
            continue
        audience.append(list_id)
    return audience


async def _list_shows_reply(
    session: AsyncSession, list_id: int, owner_id: int, policy: str, reply_target: int
) -> bool:
    if policy == "followed":
        follow = await session.scalar(
            select(Follow.id).where(
                Follow.account_id == owner_id, Follow.target_account_id == reply_target
            )
        )
        return follow is not None or reply_target == owner_id
    if policy == "list":
        member = await session.scalar(
            select(ListMember.account_id).where(
                ListMember.list_id == list_id, ListMember.account_id == reply_target
            )
        )
        return member is not None
    return False


async def public_channels(session: AsyncSession, status: Status) -> list[str]:
    """Public streams for ``status``: only public originals; replies to others skip the
    federated and local streams as in Mastodon, but still reach their hashtags."""
    if status.visibility != "public" or status.reblog_of_id is not None:
        return []
    channels = [] if is_reply_to_other(status) else ["public", "public:local"]
    tags = await session.scalars(
        select(Tag.name_key)
        .join(StatusTag, StatusTag.tag_id == Tag.id)
        .where(StatusTag.status_id == status.id)
        .order_by(Tag.name_key)
    )
    channels.extend(f"hashtag:{name}" for name in tags)
    return channels


async def tag_followers(session: AsyncSession, status: Status) -> list[int]:
    """Accounts following a hashtag of a public status, who see it in their home timeline."""
    if status.visibility != "public" or status.reblog_of_id is not None:
        return []
    readers = set(
        (
            await session.scalars(
                select(TagFollow.account_id)
                .join(StatusTag, StatusTag.tag_id == TagFollow.tag_id)
                .where(StatusTag.status_id == status.id)
            )
        ).all()
    )
    if not readers:
        return []
    readers -= await accounts_hiding(session, {status.account_id})
    readers -= await _exclusive_list_owners(session, status.account_id)
    return sorted(readers)
