"""The entity answering a post, made from what the post just wrote.

Rendering a status the usual way reads it back with everything that hangs off it (mentions, tags,
media, polls, the reader's favourites and bookmarks): eight statements, about a third of a
post's cost. A status written a moment ago has none of that beyond what the request itself
stored, and nobody has favourited, reblogged, bookmarked or pinned it yet; only its author's
entity (whose counters the post just moved) and the posting application are read. Statuses
with media, a poll, a quote or hashtags are rendered the usual way.

The entity is put together by ``townsquare/statuses/entities.py`` from the parts given here, so it
is the same one the status shows everywhere else; the rendered part goes into the worker's entity
cache, where the first home timelines showing the new status find it.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import (
    ENTITY_COLUMNS,
    AccountFields,
    account_entities,
    iso_time,
    public_account_entity,
)
from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError
from townsquare.oauth.models import OAuthApp
from townsquare.state import AppState
from townsquare.statuses.cache import entity_cache
from townsquare.statuses.entities import (
    _Batch,
    _entity,
    _StatusPart,
    mention_entity,
    render_status,
)
from townsquare.statuses.models import Status


@dataclass(frozen=True)
class Posted:
    """A status as its post request wrote it. ``plain`` when nothing but the status, its
    mentions and its effects were written (no media, poll, quote or hashtags), and it was
    written by this request (not found again through an Idempotency-Key)."""

    status: Status
    mentioned: list[Account] = field(default_factory=list)
    plain: bool = False


async def render_posted(
    session: AsyncSession, state: AppState, viewer_id: int, posted: Posted
) -> dict[str, Any]:
    status = posted.status
    if not posted.plain or status.reblog_of_id is not None or status.quote_of_id is not None:
        return await render_status(session, state, viewer_id, status)
    accounts = await account_entities(
        session, state.settings, entity_cache(state).accounts, [status.account_id]
    )
    author = accounts.get(status.account_id)
    if author is None:
        raise ApiError(404, "Record not found")
    application = None
    if status.application_id:
        app = await session.execute(
            select(OAuthApp.name, OAuthApp.website).where(OAuthApp.id == status.application_id)
        )
        found = app.first()
        if found is not None:
            application = {"name": found.name, "website": found.website}
    return posted_entity(state, viewer_id, status, author, application, posted.mentioned)


# A row of an author's entity columns (ENTITY_COLUMNS), read by name.
_AuthorRow = namedtuple("_AuthorRow", [column.key for column in ENTITY_COLUMNS])  # type: ignore[misc]


def author_columns(dialect: Dialect, row: Sequence[Any]) -> tuple[Any, ...]:
    """A row of ENTITY_COLUMNS as the driver returned it, with the values SQLAlchemy would
    have made of it (datetimes, booleans, JSON): equal to the row ``account_entities`` reads,
    so both find the same cached entity."""
    processors = _author_processors(dialect)
    return tuple(value if p is None else p(value) for p, value in zip(processors, row, strict=True))


@cache
def _author_processors(dialect: Dialect) -> list[Callable[[Any], Any] | None]:
    return [column.type._cached_result_processor(dialect, None) for column in ENTITY_COLUMNS]


def author_entity(state: AppState, columns: tuple[Any, ...]) -> dict[str, Any]:
    """The author's Account entity from :func:`author_columns`, through the worker's cache."""
    accounts = entity_cache(state).accounts
    author_id = int(columns[0])  # ENTITY_COLUMNS begins with the id
    entity = accounts.get(author_id, columns)
    if entity is None:
        fields = cast(AccountFields, _AuthorRow(*columns))
        entity = public_account_entity(fields, state.settings)
        accounts.put(author_id, columns, entity)
    return entity


def posted_entity(
    state: AppState,
    viewer_id: int,
    status: Status,
    author: dict[str, Any],
    application: dict[str, Any] | None,
    mentioned: Sequence[Account] = (),
) -> dict[str, Any]:
    """The entity of a plain status just written, from its row, its author's entity and its
    application."""
    settings = state.settings
    username = author["username"]
    by_id = sorted({account.id: account for account in mentioned}.items())
    part = _StatusPart(
        created_at=iso_time(status.created_at),
        uri=f"{settings.public_url}/users/{username}/statuses/{status.id}",
        url=f"{settings.public_url}/@{username}/{status.id}",
        application=application,
        media=[],
        mentions=[
            mention_entity(account_id, account.username, settings) for account_id, account in by_id
        ],
        tags=[],
        has_poll=False,
    )
    entity_cache(state).statuses.put(status.id, status.edited_at, part)
    batch = _Batch(
        statuses={status.id: status}, parts={status.id: part}, accounts={status.account_id: author}
    )
    entity = _entity(status, batch, viewer_id)
    if entity is None:
        raise ApiError(404, "Record not found")
    return entity
