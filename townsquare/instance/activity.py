"""Weekly instance activity (``/api/v1/instance/activity``): statuses, logins, sign-ups."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.db.base import utcnow
from townsquare.ids import id_at
from townsquare.oauth.models import OAuthToken
from townsquare.state import AppState
from townsquare.statuses.models import Status

WEEKS = 12
CACHE_SECONDS = 300.0
_KEY = "instance.activity"


def _week_starts(now: dt.datetime) -> list[dt.datetime]:
    """Mondays at midnight UTC, this week first."""
    today = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - dt.timedelta(days=today.weekday())
    return [monday - dt.timedelta(weeks=n) for n in range(WEEKS)]


def _id_at(moment: dt.datetime) -> int:
    return id_at(int(moment.timestamp() * 1000))


async def weekly_activity(session: AsyncSession) -> list[dict[str, str]]:
    weeks = []
    for start in _week_starts(utcnow()):
        end = start + dt.timedelta(weeks=1)
        statuses = await session.scalar(
            select(func.count())
            .select_from(Status)
            .where(Status.id >= _id_at(start), Status.id < _id_at(end))
        )
        # A token issued is a sign-in; counted once per account per week.
        logins = await session.scalar(
            select(func.count(func.distinct(OAuthToken.account_id))).where(
                OAuthToken.created_at >= start, OAuthToken.created_at < end
            )
        )
        registrations = await session.scalar(
            select(func.count())
            .select_from(Account)
            .where(Account.created_at >= start, Account.created_at < end)
        )
        weeks.append(
            {
                "week": str(int(start.timestamp())),
                "statuses": str(statuses or 0),
                "logins": str(logins or 0),
                "registrations": str(registrations or 0),
            }
        )
    return weeks


async def cached_weekly_activity(state: AppState) -> list[dict[str, str]]:
    cached = state.extras.get(_KEY)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        weeks: list[dict[str, str]] = cached[1]
        return weeks
    async with state.db.read() as session:
        weeks = await weekly_activity(session)
    state.extras[_KEY] = (time.monotonic(), weeks)
    return weeks
