"""Posting a status: validation first, then one transaction writes it and all that follows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Insert, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from townsquare.accounts.entities import ENTITY_COLUMNS
from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError
from townsquare.config import Settings
from townsquare.db.base import UTCDateTime, utcnow
from townsquare.ids import new_id
from townsquare.jobs.models import Job
from townsquare.media.service import attach_media
from townsquare.oauth.models import OAuthApp
from townsquare.privacy import OPEN_VISIBILITIES, can_view_status
from townsquare.statuses.content import check_length, render_text, write_links
from townsquare.statuses.effects import announce_new_status, notify_about
from townsquare.statuses.lookup import original_of
from townsquare.statuses.models import IdempotencyKey, Status
from townsquare.statuses.page_reads import rows_on_driver
from townsquare.statuses.polls import check_poll, create_poll
from townsquare.statuses.posted import Posted, author_columns
from townsquare.statuses.schemas import PollDraft, StatusDraft
from townsquare.text import render_html, tokenize
from townsquare.timelines.fanout import FANOUT

MAX_IDEMPOTENCY_KEY = 200


async def _reply_target(
    session: AsyncSession, author: Account, status_id: int | None
) -> Status | None:
    if status_id is None:
        return None
    parent = await session.get(Status, status_id)
    if parent is not None:
        parent = await original_of(session, parent)
    if parent is None or not await can_view_status(session, author.id, parent):
        raise ApiError(404, "Record not found")
    return parent


async def _quote_target(
    session: AsyncSession, author: Account, status_id: int | None
) -> Status | None:
    if status_id is None:
        return None
    quoted = await session.get(Status, status_id)
    if quoted is not None:
        quoted = await original_of(session, quoted)
    if quoted is None or not await can_view_status(session, author.id, quoted):
        raise ApiError(404, "Record not found")
    if quoted.visibility not in OPEN_VISIBILITIES:
        raise ApiError(422, "Validation failed: only public and unlisted statuses can be quoted")
    return quoted


def check_body(settings: Settings, text: str, media_ids: list[int], poll: PollDraft | None) -> None:
    if not text.strip() and not media_ids and poll is None:
        raise ApiError(422, "Validation failed: Text can't be blank")
    if poll is not None and media_ids:
        raise ApiError(422, "Validation failed: a status cannot have both media and a poll")
    if len(set(media_ids)) > settings.max_media_attachments:
        raise ApiError(
            422,
            f"Validation failed: a status can have at most {settings.max_media_attachments} media",
        )
    if poll is not None:
        check_poll(settings, poll)


async def _claim_idempotency_key(session: AsyncSession, account_id: int, key: str) -> Status | None:
    """Reserve ``key`` for this request, or return the status an earlier request created.

    The key's primary key makes this safe under concurrency: a second request with the same key
    waits for the first one's transaction and then finds its status.
    """
    existing = await session.get(IdempotencyKey, (account_id, key))
    if existing is None:
        try:
            async with session.begin_nested():
                session.add(IdempotencyKey(account_id=account_id, key=key))
            return None
        except IntegrityError:
            existing = await session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
                )
            )
    if existing is None or existing.status_id is None:
        raise ApiError(409, "A request with this Idempotency-Key is still being processed")
    status = await session.get(Status, existing.status_id)
    if status is None:
        raise ApiError(409, "The status created with this Idempotency-Key was deleted")
    return status


async def create_status(
    session: AsyncSession,
    settings: Settings,
    author: Account,
    draft: StatusDraft,
    *,
    application_id: int | None = None,
    idempotency_key: str | None = None,
) -> Status:
    posted = await write_status(
        session,
        settings,
        author,
        draft,
        application_id=application_id,
        idempotency_key=idempotency_key,
    )
    return posted.status


async def write_status(
    session: AsyncSession,
    settings: Settings,
    author: Account,
    draft: StatusDraft,
    *,
    application_id: int | None = None,
    idempotency_key: str | None = None,
) -> Posted:
    """Write a new status and all that follows from it; what was written is returned, so the
    answer can be rendered without reading it back (see ``posted.py``)."""
    if idempotency_key is not None:
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise ApiError(422, "Validation failed: Idempotency-Key is too long")
        earlier = await _claim_idempotency_key(session, author.id, idempotency_key)
        if earlier is not None:
            return Posted(earlier)

    if draft.scheduled_at is not None:
        raise ApiError(422, "Validation failed: scheduled statuses are not supported")
    check_body(settings, draft.status, draft.media_ids, draft.poll)
    check_length(settings, draft.status, draft.spoiler_text)
    parent = await _reply_target(session, author, draft.in_reply_to_id)
    quoted = await _quote_target(session, author, draft.quote_target_id)
    rendered = await render_text(session, settings, draft.status)

    visibility: str | None = draft.visibility
    if visibility is None:
        # Answering a direct message keeps the conversation private unless asked otherwise.
        direct_reply = parent is not None and parent.visibility == "direct"
        visibility = "direct" if direct_reply else author.default_visibility
    sensitive = draft.sensitive if draft.sensitive is not None else author.default_sensitive
    status_id = new_id()
    status = Status(
        id=status_id,
        account_id=author.id,
        in_reply_to_id=parent.id if parent else None,
        in_reply_to_account_id=parent.account_id if parent else None,
        quote_of_id=quoted.id if quoted else None,
        thread_id=(parent.thread_id or parent.id) if parent else status_id,
        text=draft.status,
        content_html=rendered.html,
        spoiler_text=draft.spoiler_text.strip(),
        visibility=visibility,
        sensitive=sensitive or bool(draft.spoiler_text.strip()),
        language=draft.language or author.default_language,
        application_id=application_id,
        created_at=utcnow(),
    )
    session.add(status)
    await session.flush()
    mentioned = await write_links(session, status, rendered)
    if draft.media_ids:
        await attach_media(
            session,
            author.id,
            status.id,
            draft.media_ids,
            max_attachments=settings.max_media_attachments,
        )
    if draft.poll is not None:
        await create_poll(session, status, draft.poll)

    await _count_new_status(session, status, parent, quoted)
    await notify_about(session, status, mentioned, "mention")
    if parent is not None and parent.account_id not in mentioned:
        await notify_about(session, status, [parent.account_id], "mention")
    if quoted is not None:
        await notify_about(session, status, [quoted.account_id], "quote")
    await announce_new_status(session, status, [author.id, *mentioned])
    if idempotency_key is not None:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.account_id == author.id, IdempotencyKey.key == idempotency_key)
            .values(status_id=status.id)
        )
    plain = not (draft.media_ids or draft.poll or quoted or rendered.tag_names)
    return Posted(status, rendered.mentioned, plain=plain)


async def _count_new_status(
    session: AsyncSession, status: Status, parent: Status | None, quoted: Status | None
) -> None:
    # Counters move with SQL expressions, so concurrent posts cannot lose an increment.
    if status.visibility != "direct":
        await session.execute(
            update(Account)
            .where(Account.id == status.account_id)
            .values(statuses_count=Account.statuses_count + 1, last_status_at=status.created_at)
        )
    if parent is not None and status.visibility in OPEN_VISIBILITIES:
        await session.execute(
            update(Status)
            .where(Status.id == parent.id)
            .values(replies_count=Status.replies_count + 1)
        )
    if quoted is not None:
        await session.execute(
            update(Status)
            .where(Status.id == quoted.id)
            .values(quotes_count=Status.quotes_count + 1)
        )


@dataclass(frozen=True)
class PlainDraft:
    """A draft that writes nothing but its status (see :func:`plain_draft`), checked and
    rendered."""

    text: str
    html: str
    spoiler_text: str
    visibility: str
    sensitive: bool
    language: str | None


def plain_draft(settings: Settings, author: Account, draft: StatusDraft) -> PlainDraft | None:
    """``draft`` checked and rendered, when posting it writes the status, its author's counter
    and its fan-out job and nothing else: no media, poll, quote, reply or schedule, not direct,
    and no mention or hashtag in its text. None for any other draft, which takes
    :func:`write_status`; the checks made here are the ones that path makes first, in its
    order, so a refused draft gets the same answer either way."""
    if (
        draft.scheduled_at is not None
        or draft.media_ids
        or draft.poll is not None
        or draft.in_reply_to_id is not None
        or draft.quote_target_id is not None
    ):
        return None
    visibility = draft.visibility or author.default_visibility
    if visibility == "direct":
        return None
    if any(token.kind in ("mention", "hashtag") for token in tokenize(draft.status)):
        return None
    check_body(settings, draft.status, draft.media_ids, draft.poll)
    check_length(settings, draft.status, draft.spoiler_text)
    spoiler_text = draft.spoiler_text.strip()
    sensitive = draft.sensitive if draft.sensitive is not None else author.default_sensitive
    return PlainDraft(
        text=draft.status,
        html=render_html(
            draft.status, usernames={}, local_domain=settings.domain, base_url=settings.public_url
        ),
        spoiler_text=spoiler_text,
        visibility=visibility,
        sensitive=bool(sensitive) or bool(spoiler_text),
        language=draft.language or author.default_language,
    )


def _insert(table: Table, columns: Sequence[str]) -> Insert:
    return insert(table).values(
        {name: bindparam(f"new_{name}", type_=table.c[name].type) for name in columns}
    )


_STATUSES: Table = Status.__table__  # type: ignore[assignment]
_JOBS: Table = Job.__table__  # type: ignore[assignment]
# Built once and run on the driver's connection (townsquare/statuses/page_reads.py): through
# the ORM's unit of work these three statements cost more CPU than the rest of a post.
_INSERT_STATUS = _insert(_STATUSES, [column.name for column in _STATUSES.columns])
_INSERT_JOB = _insert(_JOBS, ["kind", "payload", "state", "run_at", "attempts", "created_at"])
# The author's new counters, and with them every column of their entity (see posted.py).
_COUNT_AND_READ_AUTHOR = (
    update(Account)
    .where(Account.id == bindparam("author_id", type_=BigInteger))
    .values(
        statuses_count=Account.statuses_count + 1,
        last_status_at=bindparam("now", type_=UTCDateTime()),
    )
    .returning(*ENTITY_COLUMNS)
)
_APPLICATION = select(OAuthApp.name, OAuthApp.website).where(
    OAuthApp.id == bindparam("application_id", type_=BigInteger)
)


@dataclass(frozen=True)
class PlainWritten:
    """What :func:`write_plain_status` wrote: the status, its author's entity columns as
    they are now, and the posting application's name and website."""

    status: Status
    author: tuple[Any, ...]
    application: dict[str, Any] | None


async def write_plain_status(
    connection: AsyncConnection,
    author: Account,
    plain: PlainDraft,
    *,
    application_id: int | None,
) -> PlainWritten:
    """Write a status from a :func:`plain_draft`: the status (its search index follows by
    trigger or index), its author's counter and its fan-out job, the same rows
    :func:`write_status` writes for it, in ``connection``'s transaction."""
    rows = await rows_on_driver(connection)
    status_id = new_id()
    now = utcnow()
    status = Status(
        id=status_id,
        account_id=author.id,
        in_reply_to_id=None,
        in_reply_to_account_id=None,
        reblog_of_id=None,
        quote_of_id=None,
        thread_id=status_id,
        text=plain.text,
        content_html=plain.html,
        spoiler_text=plain.spoiler_text,
        visibility=plain.visibility,
        sensitive=plain.sensitive,
        language=plain.language,
        application_id=application_id,
        created_at=now,
        edited_at=None,
        replies_count=0,
        reblogs_count=0,
        favourites_count=0,
        quotes_count=0,
    )
    await rows(
        _INSERT_STATUS,
        {f"new_{column.name}": getattr(status, column.key) for column in Status.__mapper__.columns},
    )
    # A private status counts too: only direct ones do not (see _count_new_status).
    found = await rows(_COUNT_AND_READ_AUTHOR, {"author_id": author.id, "now": now})
    if not found:
        raise ApiError(404, "Record not found")
    await rows(
        _INSERT_JOB,
        {
            "new_kind": FANOUT,
            "new_payload": {"status_id": status_id},
            "new_state": "queued",
            "new_run_at": now,
            "new_attempts": 0,
            "new_created_at": now,
        },
    )
    application = None
    if application_id:
        app = await rows(_APPLICATION, {"application_id": application_id})
        if app:
            application = {"name": app[0][0], "website": app[0][1]}
    return PlainWritten(status, author_columns(connection.dialect, found[0]), application)
