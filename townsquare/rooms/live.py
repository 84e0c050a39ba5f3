"""The two WebSockets of a live room: a speaker sends WebM, a listener receives frames.

``/api/v1/rooms/<id>/speak`` takes binary messages, the chunks of one WebM/Opus stream as a
MediaRecorder hands them over; only the host, co-hosts and speakers who are not muted may open
it. ``/api/v1/rooms/<id>/listen`` sends the live tracks' INIT frames, then whole Clusters and
JSON room events (docs/ROOMS.md). Both take the token as ``access_token`` or as the WebSocket
subprotocol, like the streaming API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import WebSocket
from starlette.types import Scope
from starlette.websockets import WebSocketDisconnect

from townsquare.api.auth import ANONYMOUS, Viewer
from townsquare.api.errors import ApiError
from townsquare.api.params import as_id
from townsquare.api.responses import FastJSON
from townsquare.ids import new_id
from townsquare.rooms import frames
from townsquare.rooms.admission import JoinAdmission
from townsquare.rooms.ebml import ClusterSplitter, EbmlError
from townsquare.rooms.hub import RoomHub, hub_of
from townsquare.rooms.recording import TrackRecorder, room_dir
from townsquare.rooms.relay import Listener, ListenerClosed, QueuedListener
from townsquare.rooms.service import check_may_listen, visible_room
from townsquare.rooms.wire import Transport, transport_of
from townsquare.state import AppState, app_state
from townsquare.streaming.auth import protocol_token, stream_viewer

log = logging.getLogger("townsquare.rooms")

# Close codes: normal, policy violation, unsupported data; 4000+ are the application's.
NORMAL = 1000
POLICY_VIOLATION = 1008
UNSUPPORTED_DATA = 1003
CLOSE_CODES = {"too slow": 4008, "removed": 4003, "muted": 4009, "not a speaker": 4009}
# Seconds a cut-off listener has to take its close frame before its connection is dropped.
CUT_OFF_GRACE = 10.0


async def refuse(websocket: WebSocket, error: ApiError) -> None:
    """Answer with a plain HTTP error before the upgrade where the server allows it."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        response = FastJSON(
            {"error": error.message}, status_code=error.status, headers=error.headers
        )
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=POLICY_VIOLATION, reason=error.message)


async def _room_for(websocket: WebSocket, room_id: str, viewer: Viewer) -> tuple[int, bool]:
    """(room id, may speak) once the viewer is allowed to listen."""
    state = app_state(websocket)
    hub = hub_of(state)
    number = as_id(room_id)
    if viewer.account_id is None:
        if hub.open_to_anyone(number):
            return number, False
        # Anonymous listeners joining together (a storm) share one look-up of the room.
        return await hub.look_up_once(number, lambda: _look_up(state, hub, number, None))
    return await _look_up(state, hub, number, viewer.account_id)


async def _look_up(
    state: AppState, hub: RoomHub, number: int, account_id: int | None
) -> tuple[int, bool]:
    async with state.db.read() as session:
        room = await visible_room(session, number, account_id)
        part = await check_may_listen(session, room, account_id)
    if room.visibility == "public" and room.state == "live":
        hub.note_open(room.id)
    return room.id, part.may_speak


def _anonymous(scope: Scope) -> bool:
    """Whether the handshake carries nothing that could name a viewer: no token (header,
    query or subprotocol) and no cookie. Such a listener is anonymous without building a
    request to look (in a join storm, most are)."""
    if b"access_token" in scope.get("query_string", b""):
        return False
    return all(name not in _CREDENTIAL_HEADERS for name, _value in scope["headers"])


_CREDENTIAL_HEADERS = frozenset((b"authorization", b"cookie", b"sec-websocket-protocol"))


async def listen(websocket: WebSocket, room_id: str) -> None:
    hub = hub_of(app_state(websocket))
    try:
        wait = hub.admission.admit()
        if wait:
            raise ApiError(
                503,
                "Too many listeners are joining; try again shortly",
                headers={"Retry-After": JoinAdmission.retry_after(wait)},
            )
        anonymous = _anonymous(websocket.scope)
        viewer = ANONYMOUS if anonymous else await stream_viewer(websocket)
        room, _may_speak = await _room_for(websocket, room_id, viewer)
    except ApiError as error:
        await refuse(websocket, error)
        return
    # Without a Sec-WebSocket-Protocol header there is no subprotocol to echo.
    await websocket.accept(subprotocol=None if anonymous else protocol_token(websocket))
    transport = transport_of(websocket.scope)
    relay, listener = await hub.join(room, viewer.account_id, transport)
    try:
        if isinstance(listener, QueuedListener):
            reason = await _listen_queued(websocket, listener)
        else:
            # The relay writes to the socket itself; this task only reads, to notice the
            # listener leaving, and is woken to close the connection.
            reason = await _read_until_closed(websocket, listener)
    finally:
        await hub.leave(relay, listener)
    if reason in ("too slow", "closing") and transport is not None:
        # A client that reads nothing takes neither the close frame nor what is before it, and
        # closing a transport waits for its buffer to drain: the connection is dropped instead.
        asyncio.get_running_loop().call_later(CUT_OFF_GRACE, _drop, transport)
    if reason in ("gone", "closing"):
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            websocket.close(code=CLOSE_CODES.get(reason, NORMAL), reason=reason), 5.0
        )


def _drop(transport: Transport) -> None:
    with contextlib.suppress(Exception):
        transport.abort()


async def _read_until_closed(websocket: WebSocket, listener: Listener) -> str:
    """Read until the client leaves or the listener is closed; the reason it ended."""
    early = listener.closed or listener.ending
    if early is not None:
        return early  # closed while joining, before there was a task to wake
    task = asyncio.current_task()
    listener.task = task
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except asyncio.CancelledError:
        reason = listener.closed or listener.ending
        if reason is None:
            raise  # the server is shutting down
        if task is not None:
            task.uncancel()
        return reason
    except Exception:
        pass  # the connection broke
    finally:
        listener.task = None
    return "gone"


async def _listen_queued(websocket: WebSocket, listener: QueuedListener) -> str:
    """Send the listener's queue through the ASGI path; the reason it ended."""
    # The connection's own task sits at the bottom of the whole ASGI stack (server, middleware,
    # router), and waking it resumes every one of those frames. It only reads, which is rare;
    # the frames go out from a task of its own whose stack is two calls deep, woken once per
    # batch of frames queued for this listener.
    connection = asyncio.current_task()
    sender = asyncio.create_task(_send_frames(websocket, listener))
    listener.task = sender
    reading = True

    def stop_reading(_task: asyncio.Task[str]) -> None:
        if reading and connection is not None:
            connection.cancel()

    sender.add_done_callback(stop_reading)
    try:
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        except asyncio.CancelledError:
            if not sender.done():
                raise  # the server is shutting down
            if connection is not None:
                connection.uncancel()
        except Exception:
            pass  # the connection broke
        reading = False
        listener.close("gone")
        return await sender
    finally:
        reading = False
        if not sender.done():
            sender.cancel()


async def _send_frames(websocket: WebSocket, listener: QueuedListener) -> str:
    """Send the listener's frames until it is closed; the reason it ended."""
    try:
        while True:
            message, size, sequence = await listener.next()
            listener.sending = True
            await websocket.send(message)
            listener.sent(size, sequence)
            listener.sending = False
    except ListenerClosed as closed:
        return closed.reason
    except asyncio.CancelledError:
        # Cut off while stuck writing to a connection that reads nothing.
        if listener.closed is None or listener.closed == "gone":
            return "gone"
        return listener.closed
    except Exception:
        return "gone"  # the connection broke under the write


async def speak(websocket: WebSocket, room_id: str) -> None:
    state = app_state(websocket)
    hub = hub_of(state)
    try:
        viewer = await stream_viewer(websocket)
        if viewer.account is None:
            raise ApiError(401, "This method requires an authenticated user")
        room, may_speak = await _room_for(websocket, room_id, viewer)
        if not may_speak:
            raise ApiError(403, "Only speakers may speak in this room")
    except ApiError as error:
        await refuse(websocket, error)
        return
    account_id = viewer.account.id
    await websocket.accept(subprotocol=protocol_token(websocket))
    session = SpeakingSession(hub, room, account_id, new_id())
    await session.run(websocket, state.settings.data_dir, state.settings.rooms_segment_seconds)


class SpeakingSession:
    """One speaking connection: its track, cut into Clusters, published and recorded."""

    def __init__(self, hub: RoomHub, room_id: int, account_id: int, track_id: int) -> None:
        self.hub = hub
        self.room_id = room_id
        self.account_id = account_id
        self.track_id = track_id
        self.stop_reason: str | None = None
        self._task: asyncio.Task[object] | None = None

    def close(self, reason: str) -> None:
        """Called by the relay when the speaker is muted, removed, replaced or the room ends."""
        if self.stop_reason is None:
            self.stop_reason = reason
            if self._task is not None:
                self._task.cancel()

    async def run(self, websocket: WebSocket, data_dir: object, segment_seconds: float) -> None:
        from pathlib import Path

        assert isinstance(data_dir, Path)
        self._task = asyncio.current_task()
        relay = await self.hub.add_speaker(self.room_id, self.account_id, self.close)
        splitter = ClusterSplitter()
        recorder = TrackRecorder(
            room_dir(data_dir, self.room_id) / str(self.track_id),
            self.track_id,
            self.account_id,
            segment_seconds=segment_seconds,
        )
        started = False
        close_code, close_reason = NORMAL, ""
        try:
            await self.hub.event(
                self.room_id,
                {
                    "type": "speaking",
                    "account_id": str(self.account_id),
                    "track": str(self.track_id),
                },
            )
            while self.stop_reason is None:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                chunk = message.get("bytes")
                if chunk is None:
                    continue
                clusters = splitter.feed(chunk)
                if not started and splitter.init_segment is not None:
                    started = True
                    recorder.start(splitter.init_segment)
                    await self.hub.publish(
                        self.room_id,
                        frames.media_frame(frames.INIT, self.track_id, splitter.init_segment),
                    )
                for cluster in clusters:
                    await self.hub.publish(
                        self.room_id, frames.media_frame(frames.CLUSTER, self.track_id, cluster)
                    )
                    recorder.add(cluster)
        except EbmlError as error:
            close_code, close_reason = UNSUPPORTED_DATA, str(error)[:120]
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass
        finally:
            if self.stop_reason is not None:
                close_code = CLOSE_CODES.get(self.stop_reason, NORMAL)
                close_reason = self.stop_reason
            await self._wind_up(started, recorder)
            await self.hub.remove_speaker(relay, self.account_id, self.close)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code=close_code, reason=close_reason), 5.0)

    async def _wind_up(self, started: bool, recorder: TrackRecorder) -> None:
        try:
            if started:
                recorder.finish()
                await self.hub.publish(self.room_id, frames.media_frame(frames.END, self.track_id))
            await self.hub.event(
                self.room_id,
                {
                    "type": "speaker_left",
                    "account_id": str(self.account_id),
                    "track": str(self.track_id),
                },
            )
        except Exception:
            log.exception("rooms: winding up track %s failed", self.track_id)
