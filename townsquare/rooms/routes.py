"""The rooms API (docs/ROOMS.md): JSON endpoints, the two WebSockets, segments and the page."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer
from townsquare.api.errors import ApiError
from townsquare.api.params import as_id, parse, read_params
from townsquare.rooms import live
from townsquare.rooms import service as rooms
from townsquare.rooms.auth import room_viewer
from townsquare.rooms.entities import member_entity, participants, room_entity
from townsquare.rooms.hub import hub_of
from townsquare.rooms.models import Room
from townsquare.rooms.recording import read_tracks, room_dir, segment_path
from townsquare.state import app_state

router = APIRouter()
PAGE = Path(__file__).parent / "templates" / "room.html"
STATIC = Path(__file__).parent / "static"
REACTIONS = frozenset({"👏", "❤️", "😂", "🔥", "💯", "🙌", "😮", "👍"})


class RoomParams(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str = Field("", max_length=1000)
    visibility: str = "public"
    scheduled_at: dt.datetime | None = None
    start: bool | None = None


class AccountParam(BaseModel):
    model_config = ConfigDict(extra="ignore")
    account_id: str


class ReactionParams(BaseModel):
    model_config = ConfigDict(extra="ignore")
    emoji: str


async def _render(request: Request, room: Room, viewer: Viewer) -> dict[str, Any]:
    state = app_state(request)
    count = await hub_of(state).listener_count(room.id) if room.state == "live" else 0
    async with state.db.read() as session:
        return await room_entity(session, state.settings, room, viewer.account_id, count)


@router.post("/api/v1/rooms")
async def create(
    request: Request, viewer: Viewer = Depends(room_viewer("write"))
) -> dict[str, Any]:
    params = parse(RoomParams, await read_params(request))
    state = app_state(request)
    host = viewer.require_account()
    async with state.db.write() as session:
        room = await rooms.create_room(
            session, host, rooms.RoomDraft(params.title, params.visibility, params.scheduled_at)
        )
        start = params.start if params.start is not None else params.scheduled_at is None
        if start:
            room = await rooms.start_room(session, state.settings, host, room.id)
    return await _render(request, room, viewer)


@router.get("/api/v1/rooms")
async def index(request: Request, viewer: Viewer = Depends(room_viewer())) -> list[dict[str, Any]]:
    state = app_state(request)
    async with state.db.read() as session:
        found = await rooms.rooms_for(session, viewer.account_id)
    return [await _render(request, room, viewer) for room in found]


async def _visible(request: Request, room_id: str, viewer: Viewer) -> Room:
    async with app_state(request).db.read() as session:
        return await rooms.visible_room(session, as_id(room_id), viewer.account_id)


@router.get("/api/v1/rooms/{room_id}")
async def show(
    request: Request, room_id: str, viewer: Viewer = Depends(room_viewer())
) -> dict[str, Any]:
    return await _render(request, await _visible(request, room_id, viewer), viewer)


@router.post("/api/v1/rooms/{room_id}/start")
async def start(
    request: Request, room_id: str, viewer: Viewer = Depends(room_viewer("write"))
) -> dict[str, Any]:
    state = app_state(request)
    async with state.db.write() as session:
        room = await rooms.start_room(
            session, state.settings, viewer.require_account(), as_id(room_id)
        )
    return await _render(request, room, viewer)


@router.post("/api/v1/rooms/{room_id}/end")
async def end(
    request: Request, room_id: str, viewer: Viewer = Depends(room_viewer("write"))
) -> dict[str, Any]:
    state = app_state(request)
    async with state.db.write() as session:
        room = await rooms.end_room(session, viewer.require_account(), as_id(room_id))
    await hub_of(state).event(room.id, {"type": "ended"})
    return await _render(request, room, viewer)


@router.get("/api/v1/rooms/{room_id}/participants")
async def list_participants(
    request: Request, room_id: str, viewer: Viewer = Depends(room_viewer())
) -> list[dict[str, Any]]:
    room = await _visible(request, room_id, viewer)
    state = app_state(request)
    async with state.db.read() as session:
        return await participants(session, state.settings, room)


async def _member_action(
    request: Request, room_id: str, viewer: Viewer, action: str
) -> dict[str, Any]:
    """Apply ``action`` to the account named in the parameters; tell the room about it."""
    state = app_state(request)
    target = as_id(parse(AccountParam, await read_params(request)).account_id, "account_id")
    actor = viewer.require_account()
    room = as_id(room_id)
    async with state.db.write() as session:
        if action in ("cohost", "speaker", "listener"):
            member = await rooms.set_role(session, actor, room, target, action)
            event: dict[str, Any] = {"type": "role", "role": action}
        elif action in ("mute", "unmute"):
            member = await rooms.set_muted(session, actor, room, target, action == "mute")
            event = {"type": "muted" if action == "mute" else "unmuted"}
        elif action == "remove":
            member = await rooms.remove_member(session, actor, room, target)
            event = {"type": "removed"}
        else:
            member = await rooms.invite(session, actor, room, target)
            event = {"type": "invited"}
        account = await session.get(Account, target)
        assert account is not None
        entity = member_entity(member, account, state.settings)
    event["account_id"] = str(target)
    await hub_of(state).event(room, event)
    return entity


def _member_route(path: str, action: str, summary: str) -> None:
    async def endpoint(
        request: Request, room_id: str, viewer: Viewer = Depends(room_viewer("write"))
    ) -> dict[str, Any]:
        return await _member_action(request, room_id, viewer, action)

    endpoint.__name__ = f"room_{action}"
    router.add_api_route(path, endpoint, methods=["POST"], summary=summary)


_member_route("/api/v1/rooms/{room_id}/cohosts", "cohost", "Make an account a co-host")
_member_route("/api/v1/rooms/{room_id}/speakers", "speaker", "Invite an account to speak")
_member_route("/api/v1/rooms/{room_id}/listeners", "listener", "Make a speaker a listener")
_member_route("/api/v1/rooms/{room_id}/mute", "mute", "Mute a speaker")
_member_route("/api/v1/rooms/{room_id}/unmute", "unmute", "Unmute a speaker")
_member_route("/api/v1/rooms/{room_id}/remove", "remove", "Remove someone from the room")
_member_route("/api/v1/rooms/{room_id}/invite", "invite", "Invite an account to a private room")


@router.post("/api/v1/rooms/{room_id}/hand")
async def raise_hand(
    request: Request, room_id: str, viewer: Viewer = Depends(room_viewer("write"))
) -> dict[str, Any]:
    return await _hand(request, room_id, viewer, raised=True)


@router.delete("/api/v1/rooms/{room_id}/hand")
async def lower_hand(
    request: Request, room_id: str, viewer: Viewer = Depends(room_viewer("write"))
) -> dict[str, Any]:
    return await _hand(request, room_id, viewer, raised=False)


async def _hand(request: Request, room_id: str, viewer: Viewer, *, raised: bool) -> dict[str, Any]:
    state = app_state(request)
    actor = viewer.require_account()
    async with state.db.write() as session:
        member = await rooms.raise_hand(session, actor, as_id(room_id), raised)
        entity = member_entity(member, actor, state.settings)
    await hub_of(state).event(
        as_id(room_id), {"type": "hand", "account_id": str(actor.id), "raised": raised}
    )
    return entity


@router.post("/api/v1/rooms/{room_id}/reactions")
async def react(
    request: Request, room_id: str, viewer: Viewer = Depends(room_viewer("write"))
) -> dict[str, Any]:
    emoji = parse(ReactionParams, await read_params(request)).emoji
    if emoji not in REACTIONS:
        raise ApiError(
            422, f"Validation failed: emoji must be one of {' '.join(sorted(REACTIONS))}"
        )
    state = app_state(request)
    async with state.db.read() as session:
        room = await rooms.visible_room(session, as_id(room_id), viewer.account_id)
        await rooms.check_may_listen(session, room, viewer.account_id)
    event = {"type": "reaction", "account_id": str(viewer.account_id), "emoji": emoji}
    await hub_of(state).event(room.id, event)
    return event


@router.get("/api/v1/rooms/{room_id}/playlist")
async def playlist(
    request: Request, room_id: str, viewer: Viewer = Depends(room_viewer())
) -> Response:
    room = await _visible(request, room_id, viewer)
    if room.state == "scheduled":
        raise ApiError(409, "This room is not live")
    state = app_state(request)
    base = f"/api/v1/rooms/{room.id}/tracks"
    tracks = []
    for track in read_tracks(room_dir(state.settings.data_dir, room.id)):
        tracks.append(
            {
                **track,
                "init_url": f"{base}/{track['track']}/init.webm",
                "recording_url": f"{base}/{track['track']}/recording.webm",
                "segments": [
                    {**segment, "url": f"{base}/{track['track']}/{segment['seq']:06d}.webm"}
                    for segment in track["segments"]
                ],
            }
        )
    body = {"room_id": str(room.id), "live": room.state == "live", "tracks": tracks}
    live_room = room.state == "live"
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={"Cache-Control": _cache(room, "max-age=1" if live_room else "max-age=3600")},
    )


def _cache(room: Room, policy: str) -> str:
    return f"{'public' if room.visibility == 'public' else 'private'}, {policy}"


@router.get("/api/v1/rooms/{room_id}/tracks/{track_id}/recording.webm")
async def recording(
    request: Request, room_id: str, track_id: str, viewer: Viewer = Depends(room_viewer())
) -> StreamingResponse:
    room = await _visible(request, room_id, viewer)
    directory = room_dir(app_state(request).settings.data_dir, room.id)
    init = segment_path(directory, as_id(track_id), "init.webm")
    if init is None:
        raise ApiError(404, "Record not found")
    names = [
        f"{s['seq']:06d}.webm"
        for t in read_tracks(directory)
        if t["track"] == track_id
        for s in t["segments"]
    ]

    async def body() -> AsyncIterator[bytes]:
        yield init.read_bytes()
        for name in names:
            path = segment_path(directory, as_id(track_id), name)
            if path is not None:
                yield path.read_bytes()

    return StreamingResponse(
        body(), media_type="audio/webm", headers={"Cache-Control": _cache(room, "max-age=5")}
    )


@router.get("/api/v1/rooms/{room_id}/tracks/{track_id}/{name}")
async def segment(
    request: Request,
    room_id: str,
    track_id: str,
    name: str,
    viewer: Viewer = Depends(room_viewer()),
) -> FileResponse:
    room = await _visible(request, room_id, viewer)
    path = segment_path(
        room_dir(app_state(request).settings.data_dir, room.id), as_id(track_id), name
    )
    if path is None:
        raise ApiError(404, "Record not found")
    # A segment never changes once written.
    return FileResponse(
        path,
        media_type="audio/webm",
        headers={"Cache-Control": _cache(room, "max-age=31536000, immutable")},
    )


async def listen_socket(websocket: WebSocket) -> None:
    await live.listen(websocket, websocket.path_params["room_id"])


async def speak_socket(websocket: WebSocket) -> None:
    await live.speak(websocket, websocket.path_params["room_id"])


# Plain Starlette routes: a listener holds its connection for hours, and FastAPI's dependency
# machinery would stay alive with each one for nothing.
router.add_websocket_route("/api/v1/rooms/{room_id}/listen", listen_socket)
router.add_websocket_route("/api/v1/rooms/{room_id}/speak", speak_socket)


@router.get("/rooms/static/{name}")
async def static(name: str) -> FileResponse:
    path = STATIC / name
    if name not in {"room.js", "room.css"} or not path.is_file():
        raise ApiError(404, "Record not found")
    media_type = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "max-age=300"})


@router.get("/rooms/{room_id}", response_class=HTMLResponse)
async def page(request: Request, room_id: str) -> HTMLResponse:
    """The room page; it reads the room itself (see room.js), with the viewer's token or,
    coming from the web app, its session (the page carries the CSRF token for that)."""
    from townsquare.web.sessions import csrf_token, issue_csrf

    as_id(room_id)
    token = csrf_token(request)
    html = PAGE.read_text().replace("{{ csrf_token }}", token)
    response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
    issue_csrf(request, response)
    return response
