"""Background jobs as rows: a job survives a crash of the process that was running it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db.base import Base, SerialKey, utcnow

JOB_STATES = ("queued", "running", "done", "failed")


class Job(Base):
    """``queued`` → ``running`` (leased until ``locked_until``) → ``done`` or ``failed``.

    A runner that dies leaves its lease to expire; another runner takes the job again. Handlers
    are written to be idempotent (unique keys, ``ON CONFLICT DO NOTHING``), so a second run has no
    visible effect.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    run_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_jobs_state_run_at", "state", "run_at"),)
