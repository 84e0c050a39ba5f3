"""Polls: creating them with a status, voting, and telling voters when a poll has ended."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.errors import ApiError
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.ids import new_id
from townsquare.jobs.queue import enqueue, handler
from townsquare.notifications.service import notify
from townsquare.state import AppState
from townsquare.statuses.models import Poll, PollVote, Status
from townsquare.statuses.schemas import PollDraft

POLL_END_JOB = "poll.end"


def check_poll(settings: Settings, draft: PollDraft) -> None:
    if len(draft.options) > settings.poll_max_options:
        raise ApiError(
            422, f"Validation failed: a poll can have at most {settings.poll_max_options} options"
        )


def is_expired(poll: Poll, now: dt.datetime | None = None) -> bool:
    return poll.expires_at is not None and poll.expires_at <= (now or utcnow())


async def create_poll(session: AsyncSession, status: Status, draft: PollDraft) -> Poll:
    poll = Poll(
        id=new_id(),
        status_id=status.id,
        options=list(draft.options),
        option_votes=[0] * len(draft.options),
        multiple=draft.multiple,
        hide_totals=draft.hide_totals,
        expires_at=utcnow() + dt.timedelta(seconds=draft.expires_in),
    )
    session.add(poll)
    await session.flush()
    enqueue(session, POLL_END_JOB, {"poll_id": poll.id}, delay=draft.expires_in)
    return poll


async def replace_poll(session: AsyncSession, status: Status, draft: PollDraft | None) -> None:
    """An edit that changes the options starts the poll afresh; the same options keep votes."""
    current = await session.scalar(select(Poll).where(Poll.status_id == status.id))
    if draft is None:
        if current is not None:
            await session.delete(current)
        return
    if current is not None and current.options == draft.options:
        current.multiple = draft.multiple
        current.hide_totals = draft.hide_totals
        return
    if current is not None:
        await session.delete(current)
        await session.flush()
    await create_poll(session, status, draft)


async def vote(session: AsyncSession, poll: Poll, voter_id: int, choices: list[int]) -> Poll:
    if is_expired(poll):
        raise ApiError(422, "Validation failed: The poll has already ended")
    wanted = list(dict.fromkeys(choices))
    if any(choice < 0 or choice >= len(poll.options) for choice in wanted):
        raise ApiError(422, "Validation failed: That is not a choice in this poll")
    if not poll.multiple and len(wanted) != 1:
        raise ApiError(422, "Validation failed: This poll allows only one choice")
    already = await session.scalar(
        select(PollVote.choice).where(PollVote.poll_id == poll.id, PollVote.account_id == voter_id)
    )
    if already is not None:
        raise ApiError(422, "Validation failed: You have already voted on this poll")
    try:
        async with session.begin_nested():
            session.add_all(
                PollVote(poll_id=poll.id, account_id=voter_id, choice=choice) for choice in wanted
            )
    except IntegrityError:
        raise ApiError(422, "Validation failed: You have already voted on this poll") from None
    counts = list(poll.option_votes)
    for choice in wanted:
        counts[choice] += 1
    poll.option_votes = counts
    poll.votes_count += len(wanted)
    poll.voters_count += 1
    await session.flush()
    return poll


async def own_choices(
    session: AsyncSession, poll_ids: list[int], voter_id: int
) -> dict[int, list[int]]:
    if not poll_ids:
        return {}
    chosen: dict[int, list[int]] = {}
    rows = await session.execute(
        select(PollVote.poll_id, PollVote.choice)
        .where(PollVote.poll_id.in_(poll_ids), PollVote.account_id == voter_id)
        .order_by(PollVote.choice)
    )
    for poll_id, choice in rows:
        chosen.setdefault(poll_id, []).append(choice)
    return chosen


@handler(POLL_END_JOB)
async def end_poll(state: AppState, payload: dict[str, Any]) -> None:
    """Notify the voters and the author once the poll has closed. Runs again harmlessly."""
    async with state.db.write() as session:
        poll = await session.get(Poll, int(payload["poll_id"]), with_for_update=True)
        if poll is None or poll.ended_notified:
            return
        if not is_expired(poll):
            # The job ran early (or the poll was extended): come back when it ends.
            assert poll.expires_at is not None
            delay = (poll.expires_at - utcnow()).total_seconds()
            enqueue(session, POLL_END_JOB, {"poll_id": poll.id}, delay=max(delay, 1.0))
            return
        status = await session.get(Status, poll.status_id)
        if status is None:
            return
        voters = await session.scalars(
            select(PollVote.account_id).where(PollVote.poll_id == poll.id).distinct()
        )
        for recipient_id in {*voters, status.account_id}:
            await notify(
                session,
                recipient_id=recipient_id,
                from_account_id=status.account_id,
                type="poll",
                status_id=status.id,
            )
        poll.ended_notified = True
