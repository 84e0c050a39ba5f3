"""Starting and stopping what runs beside the HTTP server in each worker process."""

from __future__ import annotations

from townsquare.jobs.runner import JobRunners
from townsquare.rooms import effects as _rooms_effects  # noqa: F401
from townsquare.rooms.hub import start_rooms, stop_rooms
from townsquare.shield.state import close_shield
from townsquare.state import AppState
from townsquare.streaming.hub import start_streaming, stop_streaming

# Importing these registers their job handlers.
from townsquare.timelines import fanout as _fanout  # noqa: F401
from townsquare.timelines import retention as _retention  # noqa: F401

JOB_RUNNERS = "job_runners"


async def start_background(state: AppState) -> None:
    """Start the job runners and the stream-event tailer."""
    runners = JobRunners(state, state.settings.job_workers)
    state.extras[JOB_RUNNERS] = runners
    runners.start()
    # Streaming: this process's stream-event tailer and its open connections.
    await start_streaming(state)
    await start_rooms(state)


async def stop_background(state: AppState) -> None:
    """Stop them, letting in-flight work finish or leave its lease to expire."""
    # Streaming first: open streams are closed so clients reconnect to another process.
    await stop_streaming(state)
    await stop_rooms(state)
    runners = state.extras.pop(JOB_RUNNERS, None)
    if isinstance(runners, JobRunners):
        await runners.stop()
    await close_shield(state)
