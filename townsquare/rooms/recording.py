"""Every track written to disk as short HTTP segments: the live playlist, then the recording.

A track's directory (``<data_dir>/rooms/<room>/<track>/``) holds ``init.webm``, numbered
segments ``000001.webm``, ... (each a run of whole Clusters, about ``segment_seconds`` long,
never changed once written, so caches may keep them for good) and ``track.json``, its index.
A listener who cannot hold a WebSocket, or a cache in front of many, polls the playlist and
fetches new segments; once the room has ended, the same files are its recording.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

SEGMENT_NAME = re.compile(r"^(init|\d{6})\.webm$")


def room_dir(data_dir: Path, room_id: int) -> Path:
    return data_dir / "rooms" / str(room_id)


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


@dataclass
class TrackRecorder:
    directory: Path
    track_id: int
    account_id: int
    segment_seconds: float = 2.0
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    _segments: list[dict[str, Any]] = field(default_factory=list)
    _pending: bytearray = field(default_factory=bytearray)
    _pending_since: float = 0.0

    def start(self, init_segment: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.directory / "init.webm", init_segment)
        self._write_index(ended=False)

    def add(self, cluster: bytes) -> None:
        now = time.monotonic()
        if not self._pending:
            self._pending_since = now
        self._pending += cluster
        if now - self._pending_since >= self.segment_seconds:
            self._close_segment(now)

    def finish(self) -> None:
        if self._pending:
            self._close_segment(time.monotonic())
        self._write_index(ended=True)

    def _close_segment(self, now: float) -> None:
        sequence = len(self._segments) + 1
        _write_atomically(self.directory / f"{sequence:06d}.webm", bytes(self._pending))
        self._segments.append(
            {
                "seq": sequence,
                "duration": round(max(now - self._pending_since, 0.0), 3),
                "bytes": len(self._pending),
            }
        )
        self._pending.clear()
        self._write_index(ended=False)

    def _write_index(self, *, ended: bool) -> None:
        index = {
            "track": str(self.track_id),
            "account_id": str(self.account_id),
            "started_at": self.started_at.isoformat(),
            "ended": ended,
            "segments": self._segments,
        }
        _write_atomically(self.directory / "track.json", orjson.dumps(index))


def read_tracks(directory: Path) -> list[dict[str, Any]]:
    """The indexes of a room's tracks, oldest first."""
    if not directory.is_dir():
        return []
    tracks = []
    for index in directory.glob("*/track.json"):
        try:
            tracks.append(orjson.loads(index.read_bytes()))
        except (OSError, orjson.JSONDecodeError):
            continue
    return sorted(tracks, key=lambda track: (track["started_at"], track["track"]))


def segment_path(directory: Path, track_id: int, name: str) -> Path | None:
    if not SEGMENT_NAME.match(name):
        return None
    path = directory / str(track_id) / name
    return path if path.is_file() else None
