"""What travels from a speaker to listeners: binary media frames and JSON room events.

A media frame is one WebSocket binary message: a kind byte, the track id (8 bytes, big-endian),
then the payload. A track is one speaker's stream from one speaking connection.

- ``INIT`` (1): the track's initialisation segment. A listener (re)starts the track with it.
- ``CLUSTER`` (2): one whole WebM Cluster of that track.
- ``END`` (3): the track ended (no payload).

Room events are JSON text messages with a ``type`` (see docs/ROOMS.md). On the bus between
processes they travel as frames of kind ``EVENT`` (16) with track id 0 and the JSON as payload.
"""

from __future__ import annotations

import struct

INIT = 1
CLUSTER = 2
END = 3
EVENT = 16
HEADER = struct.Struct(">BQ")
HEADER_SIZE = HEADER.size


def media_frame(kind: int, track_id: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, track_id) + payload


def event_frame(event_json: str) -> bytes:
    return HEADER.pack(EVENT, 0) + event_json.encode()


def parse_frame(frame: bytes) -> tuple[int, int, bytes]:
    """(kind, track id, payload) of a frame."""
    if len(frame) < HEADER_SIZE:
        raise ValueError("frame too short")
    kind, track_id = HEADER.unpack_from(frame)
    return kind, track_id, frame[HEADER_SIZE:]
