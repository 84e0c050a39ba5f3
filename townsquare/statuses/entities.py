"""The Status entity, rendered for a page of statuses in a fixed handful of queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    CompoundSelect,
    Result,
    bindparam,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import (
    account_entities,
    account_entity,
    iso_time,
    load_accounts,
)
from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError
from townsquare.config import Settings
from townsquare.media.entities import media_entity
from townsquare.media.models import MediaAttachment
from townsquare.media.service import media_for_statuses
from townsquare.oauth.models import OAuthApp
from townsquare.privacy import hidden_account_ids, not_hidden, visible_to
from townsquare.state import AppState
from townsquare.statuses.cache import entity_cache
from townsquare.statuses.models import (
    Bookmark,
    Favourite,
    Mention,
    Pin,
    Poll,
    Status,
    StatusEdit,
    StatusTag,
    Tag,
)
from townsquare.statuses.page_reads import in_ids
from townsquare.statuses.polls import is_expired, own_choices
from townsquare.statuses.rendered import (
    PER_READER,
    Template,
    template_of,
)


def status_uri(settings: Settings, account: Account, status: Status) -> str:
    return f"{settings.public_url}/users/{account.username}/statuses/{status.id}"


def status_url(settings: Settings, account: Account, status: Status) -> str:
    return f"{settings.public_url}/@{account.username}/{status.id}"


def tag_entity(tag: Tag, settings: Settings) -> dict[str, Any]:
    return {"name": tag.name_key, "url": f"{settings.public_url}/tags/{tag.name_key}"}


def mention_entity(account_id: int, username: str, settings: Settings) -> dict[str, Any]:
    return {
        "id": str(account_id),
        "username": username,
        "url": f"{settings.public_url}/@{username}",
        "acct": username,
    }


def poll_entity(poll: Poll, own_votes: list[int] | None) -> dict[str, Any]:
    expired = is_expired(poll)
    show_totals = expired or not poll.hide_totals
    return {
        "id": str(poll.id),
        "expires_at": iso_time(poll.expires_at) if poll.expires_at else None,
        "expired": expired,
        "multiple": poll.multiple,
        "votes_count": poll.votes_count,
        "voters_count": poll.voters_count if poll.multiple else None,
        "options": [
            {"title": title, "votes_count": count if show_totals else None}
            for title, count in zip(poll.options, poll.option_votes, strict=False)
        ],
        "emojis": [],
        "voted": own_votes is not None and len(own_votes) > 0,
        "own_votes": own_votes or [],
    }


@dataclass(frozen=True, slots=True)
class _StatusPart:
    """What a status's entity shows that only an edit changes, rendered once and cached (see
    townsquare/statuses/cache.py). Counters, reply links and the rest of the row are read
    fresh with every page."""

    created_at: str
    uri: str
    url: str
    application: dict[str, Any] | None
    media: list[dict[str, Any]]
    mentions: list[dict[str, Any]]
    tags: list[dict[str, Any]]
    has_poll: bool


@dataclass
class _Batch:
    """Everything a page of statuses refers to, each kind fetched in one query (or cached)."""

    statuses: dict[int, Status]
    parts: dict[int, _StatusPart] = field(default_factory=dict)
    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    polls: dict[int, Poll] = field(default_factory=dict)
    own_votes: dict[int, list[int]] = field(default_factory=dict)
    favourited: set[int] = field(default_factory=set)
    reblogged: set[int] = field(default_factory=set)
    bookmarked: set[int] = field(default_factory=set)
    pinned: set[int] = field(default_factory=set)
    quotable: set[int] = field(default_factory=set)


async def _related_statuses(session: AsyncSession, statuses: Sequence[Status]) -> dict[int, Status]:
    known = {status.id: status for status in statuses}
    wanted: set[int] = set()
    for status in statuses:
        wanted.update(i for i in (status.reblog_of_id, status.quote_of_id) if i is not None)
    missing = wanted - known.keys()
    if missing:
        for status in await session.scalars(select(Status).where(Status.id.in_(missing))):
            known[status.id] = status
    # Reblogged statuses may quote others in turn: fetch those too (one level is rendered).
    second = {s.quote_of_id for s in known.values() if s.quote_of_id is not None} - known.keys()
    if second:
        for status in await session.scalars(select(Status).where(Status.id.in_(second))):
            known[status.id] = status
    return known


async def _visible_quotes(
    session: AsyncSession,
    viewer_id: int | None,
    statuses: dict[int, Status],
    hidden: set[int] | None,
) -> set[int]:
    quoted_ids = {s.quote_of_id for s in statuses.values() if s.quote_of_id is not None}
    if not quoted_ids:
        return set()
    if hidden is None:
        hidden = await hidden_account_ids(session, viewer_id)
    rows = await session.scalars(
        select(Status.id).where(
            Status.id.in_(quoted_ids), visible_to(viewer_id), not_hidden(hidden)
        )
    )
    return set(rows)


async def _load(
    session: AsyncSession,
    state: AppState,
    viewer_id: int | None,
    statuses: Sequence[Status],
    hidden: set[int] | None,
) -> _Batch:
    cache = entity_cache(state)
    batch = _Batch(statuses=await _related_statuses(session, statuses))
    batch.quotable = await _visible_quotes(session, viewer_id, batch.statuses, hidden)
    batch.accounts = await account_entities(
        session, state.settings, cache.accounts, {s.account_id for s in batch.statuses.values()}
    )
    missed: list[Status] = []
    for status in batch.statuses.values():
        part = cache.statuses.get(status.id, status.edited_at)
        if part is None:
            missed.append(status)
        else:
            batch.parts[status.id] = part
    # Polls change with every vote: read fresh for the statuses that have one.
    poll_ids = [s.id for s in missed] + [i for i, part in batch.parts.items() if part.has_poll]
    if poll_ids:
        batch.polls = {
            poll.status_id: poll
            for poll in await session.scalars(select(Poll).where(Poll.status_id.in_(poll_ids)))
        }
    if missed:
        await _render_parts(session, state.settings, batch, missed)
        for status in missed:
            if status.id in batch.parts:
                cache.statuses.put(status.id, status.edited_at, batch.parts[status.id])
    if viewer_id is not None:
        await _load_viewer_state(session, viewer_id, batch, list(batch.statuses))
    return batch


async def _render_parts(
    session: AsyncSession, settings: Settings, batch: _Batch, statuses: list[Status]
) -> None:
    """The cacheable parts of ``statuses``: their media, mentions, tags and application."""
    ids = [status.id for status in statuses]
    mentions: dict[int, list[dict[str, Any]]] = {}
    for status_id, account_id, username in await session.execute(
        select(Mention.status_id, Account.id, Account.username)
        .join(Account, Account.id == Mention.account_id)
        .where(Mention.status_id.in_(ids))
        .order_by(Mention.status_id, Mention.account_id)
    ):
        mentions.setdefault(status_id, []).append(mention_entity(account_id, username, settings))
    media = await media_for_statuses(session, ids)
    tags: dict[int, list[dict[str, Any]]] = {}
    for status_id, tag in await session.execute(
        select(StatusTag.status_id, Tag)
        .join(Tag, Tag.id == StatusTag.tag_id)
        .where(StatusTag.status_id.in_(ids))
    ):
        tags.setdefault(status_id, []).append(tag_entity(tag, settings))
    apps: dict[int, OAuthApp] = {}
    app_ids = {s.application_id for s in statuses if s.application_id}
    if app_ids:
        apps = {
            app.id: app
            for app in await session.scalars(select(OAuthApp).where(OAuthApp.id.in_(app_ids)))
        }
    for status in statuses:
        author = batch.accounts.get(status.account_id)
        if author is None:
            continue
        username = author["username"]
        batch.parts[status.id] = _StatusPart(
            created_at=iso_time(status.created_at),
            uri=f"{settings.public_url}/users/{username}/statuses/{status.id}",
            url=f"{settings.public_url}/@{username}/{status.id}",
            application=_application(apps.get(status.application_id or 0)),
            media=[media_entity(m, settings) for m in media.get(status.id, [])],
            mentions=mentions.get(status.id, []),
            tags=tags.get(status.id, []),
            has_poll=status.id in batch.polls,
        )


_viewer: BindParameter[int] = bindparam("viewer_id", type_=BigInteger)


# Favourited, bookmarked, reblogged and pinned in one statement: every timeline page asks. Each
# part asks only about the statuses it can concern: a status nobody favourited (its counter,
# read with the page, is 0) is not looked up among the reader's favourites, nor one nobody
# reblogged among the reader's statuses (that part reads a row per status the reader wrote), and
# only the reader's own statuses can be pinned by them. Built once per combination of parts:
# building it and its cache key took about 0.27 ms of CPU per page.
_MARK_PARTS: dict[str, Any] = {
    "f": select(literal("f"), Favourite.status_id).where(
        Favourite.account_id == _viewer, in_ids(Favourite.status_id, "ids_f")
    ),
    "b": select(literal("b"), Bookmark.status_id).where(
        Bookmark.account_id == _viewer, in_ids(Bookmark.status_id, "ids_b")
    ),
    "r": select(literal("r"), Status.reblog_of_id).where(
        Status.account_id == _viewer, in_ids(Status.reblog_of_id, "ids_r")
    ),
    "p": select(literal("p"), Pin.status_id).where(
        Pin.account_id == _viewer, in_ids(Pin.status_id, "ids_p")
    ),
}


@cache
def viewer_marks_statement(kinds: tuple[str, ...]) -> CompoundSelect[str, int | None]:
    return union_all(*(_MARK_PARTS[kind] for kind in kinds))


async def _load_viewer_state(
    session: AsyncSession, viewer_id: int, batch: _Batch, ids: list[int]
) -> None:
    batch.own_votes = await own_choices(
        session, [poll.id for poll in batch.polls.values()], viewer_id
    )
    statuses = [batch.statuses[i] for i in ids if i in batch.statuses]
    wanted = {
        "ids_f": [s.id for s in statuses if s.favourites_count],
        "ids_b": [s.id for s in statuses],
        "ids_r": [s.id for s in statuses if s.reblogs_count],
        "ids_p": [s.id for s in statuses if s.account_id == viewer_id],
    }
    kinds = tuple(name[-1] for name, values in wanted.items() if values)
    if not kinds:
        return
    rows: Result[str, int | None] = await session.execute(
        viewer_marks_statement(kinds), {"viewer_id": viewer_id, **wanted}
    )
    marks = {"f": batch.favourited, "b": batch.bookmarked, "r": batch.reblogged, "p": batch.pinned}
    for kind, status_id in rows:
        if status_id is not None:
            marks[kind].add(status_id)


def _application(app: OAuthApp | None) -> dict[str, Any] | None:
    if app is None:
        return None
    return {"name": app.name, "website": app.website}


def _entity(
    status: Status,
    batch: _Batch,
    viewer_id: int | None,
    *,
    depth: int = 0,
) -> dict[str, Any] | None:
    account = batch.accounts.get(status.account_id)
    part = batch.parts.get(status.id)
    if account is None or part is None:
        return None
    reblog = None
    if status.reblog_of_id is not None:
        original = batch.statuses.get(status.reblog_of_id)
        reblog = _entity(original, batch, viewer_id, depth=depth) if original else None
        if reblog is None:
            return None
    quote: dict[str, Any] | None = None
    if status.quote_of_id is not None:
        quoted = batch.statuses.get(status.quote_of_id)
        nested = None
        if quoted is not None and status.quote_of_id in batch.quotable and depth == 0:
            nested = _entity(quoted, batch, viewer_id, depth=depth + 1)
        if quoted is None:
            quote = {"state": "deleted", "quoted_status": None}
        elif nested is None and depth == 0:
            quote = {"state": "unauthorized", "quoted_status": None}
        else:
            quote = {"state": "accepted", "quoted_status": nested}
    poll = batch.polls.get(status.id)
    is_reblog = reblog is not None
    return {
        "id": str(status.id),
        "created_at": part.created_at,
        "in_reply_to_id": str(status.in_reply_to_id) if status.in_reply_to_id else None,
        "in_reply_to_account_id": (
            str(status.in_reply_to_account_id) if status.in_reply_to_account_id else None
        ),
        "sensitive": status.sensitive,
        "spoiler_text": status.spoiler_text,
        "visibility": status.visibility,
        "language": status.language,
        "uri": part.uri + "/activity" if is_reblog else part.uri,
        "url": None if is_reblog else part.url,
        "replies_count": status.replies_count,
        "reblogs_count": status.reblogs_count,
        "favourites_count": status.favourites_count,
        "quotes_count": status.quotes_count,
        "edited_at": iso_time(status.edited_at) if status.edited_at else None,
        "favourited": status.id in batch.favourited,
        "reblogged": status.id in batch.reblogged,
        "muted": False,
        "bookmarked": status.id in batch.bookmarked,
        "pinned": status.id in batch.pinned,
        "content": "" if is_reblog else status.content_html,
        "filtered": [],
        "reblog": reblog,
        "application": part.application,
        "account": account,
        "media_attachments": part.media,
        "mentions": part.mentions,
        "tags": part.tags,
        "emojis": [],
        "quote": quote,
        "card": None,
        "poll": poll_entity(poll, batch.own_votes.get(poll.id)) if poll else None,
    }


async def render_statuses(
    session: AsyncSession,
    state: AppState,
    viewer_id: int | None,
    statuses: Iterable[Status],
    *,
    hidden: set[int] | None = None,
) -> list[dict[str, Any]]:
    """Status entities in the order given. The caller has already checked that the viewer may
    see these statuses; a quoted status the viewer may not see is left out of the quote.

    ``hidden`` is the viewer's :func:`hidden_account_ids` when the caller already has it. The
    entities share their nested parts with the worker's cache: replace top-level keys if needed,
    never change what is inside them.
    """
    wanted = list(statuses)
    if not wanted:
        return []
    batch = await _load(session, state, viewer_id, wanted, hidden)
    rendered = []
    for status in wanted:
        entity = _entity(status, batch, viewer_id)
        if entity is not None:
            rendered.append(entity)
    return rendered


async def make_templates(
    session: AsyncSession, state: AppState, related: dict[int, Status], statuses: list[Status]
) -> dict[int, Template]:
    """Templates of ``statuses``, rendered without a reader; statuses a template cannot show
    (a poll, a quote) get :data:`PER_READER`."""
    batch = await _load(session, state, None, list(related.values()), set())
    made: dict[int, Template] = {}
    for status in statuses:
        shown = [status]
        if status.reblog_of_id is not None and status.reblog_of_id in related:
            shown.append(related[status.reblog_of_id])
        if any(s.quote_of_id is not None or s.id in batch.polls for s in shown):
            made[status.id] = PER_READER
            continue
        entity = _entity(status, batch, None)
        if entity is not None:
            made[status.id] = template_of(entity)
    return made


async def render_status(
    session: AsyncSession, state: AppState, viewer_id: int | None, status: Status
) -> dict[str, Any]:
    rendered = await render_statuses(session, state, viewer_id, [status])
    if not rendered:
        raise ApiError(404, "Record not found")
    return rendered[0]


async def edit_entity(
    session: AsyncSession, state: AppState, status: Status, edits: Sequence[StatusEdit]
) -> list[dict[str, Any]]:
    """The StatusEdit entities of a status's history, oldest first."""
    accounts = await load_accounts(session, [status.account_id])
    account = accounts.get(status.account_id)
    if account is None:
        raise ApiError(404, "Record not found")
    author = account_entity(account, state.settings)
    media_ids = {media_id for edit in edits for media_id in edit.media_ids}
    media = {}
    if media_ids:
        media = {
            m.id: m
            for m in await session.scalars(
                select(MediaAttachment).where(MediaAttachment.id.in_(media_ids))
            )
        }
    return [
        {
            "content": edit.content_html,
            "spoiler_text": edit.spoiler_text,
            "sensitive": edit.sensitive,
            "created_at": iso_time(edit.created_at),
            "account": author,
            "poll": (
                {"options": [{"title": title} for title in edit.poll_options]}
                if edit.poll_options
                else None
            ),
            "media_attachments": [
                media_entity(media[i], state.settings) for i in edit.media_ids if i in media
            ],
            "emojis": [],
        }
        for edit in edits
    ]
