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
from dataclasses import dataclass, field

from sqlalchemy import or_, select, union_all
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
    hiding: set[int] = set()
    for readers in (await _hiding_by_author(session, author_ids)).values():
        hiding |= readers
    return hiding


async def _hiding_by_author(
    session: AsyncSession, author_ids: Collection[int]
) -> dict[int, set[int]]:
    now = utcnow()
    muting = select(Mute.target_account_id, Mute.account_id).where(
        Mute.target_account_id.in_(author_ids),
        or_(Mute.expires_at.is_(None), Mute.expires_at > now),
    )
    blocking = select(Block.target_account_id, Block.account_id).where(
        Block.target_account_id.in_(author_ids)
    )
    blocked = select(Block.account_id, Block.target_account_id).where(
        Block.account_id.in_(author_ids)
    )
    hiding: dict[int, set[int]] = {}
    for author_id, reader_id in await session.execute(union_all(muting, blocking, blocked)):
        hiding.setdefault(author_id, set()).add(reader_id)
    return hiding


@dataclass
class ListEntry:
    """A list that contains an author: whose it is, and how it treats replies."""

    list_id: int
    owner_id: int
    replies_policy: str
    exclusive: bool


@dataclass
class AuthorAudience:
    """What decides who gets an author's statuses, read once for a batch of statuses.

    ``followers`` maps each follower to their ``show_reblogs``; it stays empty for a ``pulled``
    author (read at read time instead, see ``home.py``).
    """

    pulled: bool
    followers: dict[int, bool] = field(default_factory=dict)
    hiding: set[int] = field(default_factory=set)
    lists: list[ListEntry] = field(default_factory=list)

    @property
    def exclusive_list_owners(self) -> set[int]:
        """Owners of exclusive lists containing the author: they read the author in the list
        only."""
        return {entry.owner_id for entry in self.lists if entry.exclusive}


async def author_audiences(
    session: AsyncSession, author_ids: Collection[int], *, pull_threshold: int
) -> dict[int, AuthorAudience]:
    """The audience of each of ``author_ids``, in a handful of statements for all of them."""
    if not author_ids:
        return {}
    pulled = set(
        (
            await session.scalars(
                select(Account.id).where(
                    Account.id.in_(author_ids), Account.followers_count >= pull_threshold
                )
            )
        ).all()
    )
    audiences = {author_id: AuthorAudience(pulled=author_id in pulled) for author_id in author_ids}
    pushed = [author_id for author_id in author_ids if author_id not in pulled]
    if pushed:
        rows = await session.execute(
            select(Follow.target_account_id, Follow.account_id, Follow.show_reblogs).where(
                Follow.target_account_id.in_(pushed)
            )
        )
        for author_id, follower_id, show_reblogs in rows:
            audiences[author_id].followers[follower_id] = show_reblogs
    for author_id, readers in (await _hiding_by_author(session, author_ids)).items():
        audiences[author_id].hiding = readers
    memberships = await session.execute(
        select(
            ListMember.account_id,
            UserList.id,
            UserList.account_id,
            UserList.replies_policy,
            UserList.exclusive,
        )
        .join(ListMember, ListMember.list_id == UserList.id)
        .where(ListMember.account_id.in_(author_ids))
        .order_by(UserList.id)
    )
    for author_id, list_id, owner_id, policy, exclusive in memberships:
        audiences[author_id].lists.append(ListEntry(list_id, owner_id, policy, bool(exclusive)))
    return audiences


async def _followers(session: AsyncSession, account_id: int) -> dict[int, bool]:
    rows = await session.execute(
        select(Follow.account_id, Follow.show_reblogs).where(Follow.target_account_id == account_id)
    )
    return {row.account_id: row.show_reblogs for row in rows}


async def feeds_holding(session: AsyncSession, original_id: int) -> set[int]:
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


async def home_recipients(
    session: AsyncSession, status: Status, audience: AuthorAudience
) -> list[int]:
    """Accounts whose home feed gets ``status``, the author first."""
    if status.visibility not in HOME_VISIBILITIES:
        return []
    author_id = status.account_id
    recipients = [author_id]
    if audience.pulled:
        return recipients
    followers = audience.followers
    candidates = set(followers) - {author_id}
    if not candidates:
        return recipients

    original: Status | None = None
    if status.reblog_of_id is not None:
        original = await session.get(Status, status.reblog_of_id)
        if original is None or original.visibility not in ("public", "unlisted"):
            return recipients
        # Nobody needs their own status back in their timeline as someone else's reblog.
        candidates = {a for a in candidates if followers[a] and a != original.account_id}
        candidates -= await accounts_hiding(session, {original.account_id})

    candidates -= audience.hiding
    if is_reply_to_other(status):
        reply_target = status.in_reply_to_account_id
        assert reply_target is not None
        also_following = await _followers(session, reply_target)
        candidates &= set(also_following) | {reply_target}
    candidates -= audience.exclusive_list_owners
    if original is not None and candidates:
        candidates -= await feeds_holding(session, original.id)
    return recipients + sorted(candidates)


async def list_audience(
    session: AsyncSession, status: Status, audience: AuthorAudience
) -> list[int]:
    """Lists whose stream gets ``status`` (list timelines themselves are read on demand)."""
    if status.visibility not in HOME_VISIBILITIES or not audience.lists:
        return []
    author_id = status.account_id
    owners = {entry.owner_id for entry in audience.lists}
    following = set(
        (
            await session.scalars(
                select(Follow.account_id).where(
                    Follow.target_account_id == author_id, Follow.account_id.in_(owners)
                )
            )
        ).all()
    )
    reply_target = status.in_reply_to_account_id if is_reply_to_other(status) else None
    lists = []
    for entry in audience.lists:
        if entry.owner_id in audience.hiding or entry.owner_id not in following:
            continue
        if reply_target is not None and not await _list_shows_reply(
            session, entry.list_id, entry.owner_id, entry.replies_policy, reply_target
        ):
            continue
        lists.append(entry.list_id)
    return lists


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


async def status_tags(
    session: AsyncSession, status_ids: Collection[int]
) -> dict[int, list[tuple[int, str]]]:
    """The hashtags of each status, as ``(tag id, name key)`` sorted by name."""
    tags: dict[int, list[tuple[int, str]]] = {}
    if status_ids:
        rows = await session.execute(
            select(StatusTag.status_id, Tag.id, Tag.name_key)
            .join(StatusTag, StatusTag.tag_id == Tag.id)
            .where(StatusTag.status_id.in_(status_ids))
            .order_by(Tag.name_key)
        )
        for status_id, tag_id, name_key in rows:
            tags.setdefault(status_id, []).append((tag_id, name_key))
    return tags


def public_channels(status: Status, tags: list[tuple[int, str]]) -> list[str]:
    """Public streams for ``status``: only public originals; replies to others skip the
    federated and local streams as in Mastodon, but still reach their hashtags."""
    if status.visibility != "public" or status.reblog_of_id is not None:
        return []
    channels = [] if is_reply_to_other(status) else ["public", "public:local"]
    channels.extend(f"hashtag:{name}" for _tag_id, name in tags)
    return channels


async def tag_followers(
    session: AsyncSession, status: Status, tags: list[tuple[int, str]], audience: AuthorAudience
) -> list[int]:
    """Accounts following a hashtag of a public status, who see it in their home timeline."""
    if status.visibility != "public" or status.reblog_of_id is not None or not tags:
        return []
    readers = set(
        (
            await session.scalars(
                select(TagFollow.account_id).where(
                    TagFollow.tag_id.in_([tag_id for tag_id, _name in tags])
                )
            )
        ).all()
    )
    readers -= audience.hiding
    readers -= audience.exclusive_list_owners
    return sorted(readers)
