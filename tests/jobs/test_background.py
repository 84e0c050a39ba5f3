"""The runners started with the app pick up jobs without anyone asking."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from townsquare.jobs.queue import enqueue, handler
from townsquare.state import state_of

seen: asyncio.Queue[dict[str, Any]] | None = None


@handler("test.background")
async def remember(_state: Any, payload: dict[str, Any]) -> None:
    assert seen is not None
    seen.put_nowait(payload)


async def test_background_runners_run_a_committed_job(app: FastAPI) -> None:
    global seen
    seen = asyncio.Queue()
    state = state_of(app)
    assert state.settings.job_workers > 0
    async with state.db.write() as session:
        enqueue(session, "test.background", {"hello": "world"})

    payload = await asyncio.wait_for(seen.get(), timeout=5)
    assert payload == {"hello": "world"}
