"""What one worker process holds for the whole app: settings, database and the background parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from townsquare.config import Settings
from townsquare.db.engine import Database

if TYPE_CHECKING:
    from fastapi import FastAPI


@dataclass
class AppState:
    settings: Settings
    db: Database
    # Background parts (job runners, the stream-event tailer) register here to be started with
    # the app and stopped with it.
    extras: dict[str, Any] = field(default_factory=dict)


def app_state(connection: HTTPConnection) -> AppState:
    state = connection.app.state.townsquare
    assert isinstance(state, AppState)
    return state


def state_of(app: FastAPI) -> AppState:
    state = app.state.townsquare
    assert isinstance(state, AppState)
    return state
