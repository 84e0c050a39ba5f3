"""WHERE clauses the timelines share, on top of ``townsquare.privacy``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, and_, exists, or_, select, true
from sqlalchemy.orm import aliased

from townsquare.graph.models import Follow
from townsquare.media.models import MediaAttachment
from townsquare.privacy import OPEN_VISIBILITIES
from townsquare.statuses.models import Status, StatusTag, TagFollow
from townsquare.timelines.models import ListMember, UserList

Original = aliased(Status, name="original")

# An account id, or a bound parameter standing for one in a statement built once and reused.
AccountId = int | ColumnElement[int]


def with_viewable_reblogs(query: Select[Any], hidden: set[int] | BindParameter[int]) -> Select[Any]:
    """Keep plain statuses, and reblogs whose original is open and by no one hidden.

    Only public and unlisted statuses can be reblogged, so that is all a reader needs to check.
    ``hidden`` may be an expanding bound parameter (a statement built once).
    """
    condition: ColumnElement[bool] = Original.visibility.in_(OPEN_VISIBILITIES)
    if isinstance(hidden, BindParameter) or hidden:
        condition = and_(condition, Original.account_id.not_in(hidden))
    return query.outerjoin(Original, Original.id == Status.reblog_of_id).where(
        or_(Status.reblog_of_id.is_(None), condition)
    )


def follows(follower_id: AccountId) -> Select[Any]:
    return select(Follow.target_account_id).where(Follow.account_id == follower_id)


def follows_author(reader_id: AccountId) -> ColumnElement[bool]:
    return exists().where(
        Follow.account_id == reader_id, Follow.target_account_id == Status.account_id
    )


def not_a_reply_to_others() -> ColumnElement[bool]:
    return or_(
        Status.in_reply_to_account_id.is_(None),
        Status.in_reply_to_account_id == Status.account_id,
    )


def reply_shown_in_home(reader_id: AccountId) -> ColumnElement[bool]:
    """Replies to someone else show only to readers who follow that someone (or are them)."""
    return or_(
        not_a_reply_to_others(),
        Status.in_reply_to_account_id == reader_id,
        Status.in_reply_to_account_id.in_(follows(reader_id)),
    )


def has_media(only_media: bool) -> ColumnElement[bool]:
    if not only_media:
        return true()
    return exists().where(MediaAttachment.status_id == Status.id)


def in_exclusive_list_of(reader_id: AccountId) -> ColumnElement[bool]:
    """Authors the reader put in an exclusive list: read there, not in the home timeline."""
    return Status.account_id.in_(
        select(ListMember.account_id)
        .join(UserList, UserList.id == ListMember.list_id)
        .where(UserList.account_id == reader_id, UserList.exclusive.is_(True))
    )


def has_tag_followed_by(reader_id: AccountId) -> ColumnElement[bool]:
    """Public statuses carrying a hashtag the reader follows."""
    return and_(
        Status.visibility == "public",
        exists()
        .where(StatusTag.status_id == Status.id)
        .where(
            StatusTag.tag_id.in_(select(TagFollow.tag_id).where(TagFollow.account_id == reader_id))
        ),
    )
