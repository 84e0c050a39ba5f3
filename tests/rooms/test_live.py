"""A speaker sends a real WebM/Opus stream; listeners get byte-exact Clusters in order."""

from __future__ import annotations

import asyncio
import json

import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, WebSocketUpgradeError

from tests.conftest import Person
from tests.rooms.conftest import (
    WAIT,
    WS,
    OpenRoom,
    listen_url,
    listeners_in,
    next_frame,
    speak_url,
    wait_for,
)
from tests.rooms.webm import opus_webm
from tests.streaming.conftest import connect_ws
from townsquare.rooms import frames
from townsquare.rooms.ebml import ClusterSplitter
from townsquare.rooms.hub import RoomHub


@pytest.fixture(scope="module")
def stream() -> tuple[bytes, bytes, list[bytes]]:
    """(the WebM stream, its initialisation segment, its Clusters)."""
    data = opus_webm(3.0)
    splitter = ClusterSplitter()
    clusters = splitter.feed(data)
    assert splitter.init_segment is not None
    return data, splitter.init_segment, clusters


async def send_in_chunks(speaker: AsyncWebSocketSession, data: bytes, size: int = 1000) -> None:
    """As a MediaRecorder does: chunk boundaries that are not Cluster boundaries."""
    for position in range(0, len(data), size):
        await speaker.send_bytes(data[position : position + size])


async def receive_track(listener: AsyncWebSocketSession, count: int) -> tuple[bytes, list[bytes]]:
    """The INIT payload and then ``count`` Cluster payloads, checking frame kinds and track."""
    first = await next_frame(listener)
    while isinstance(first, dict):  # room events may come first
        first = await next_frame(listener)
    assert first[0] == frames.INIT
    track = first[1]
    clusters = []
    while len(clusters) < count:
        frame = await next_frame(listener)
        if isinstance(frame, dict):
            continue
        kind, frame_track, payload = frame
        assert (kind, frame_track) == (frames.CLUSTER, track)
        clusters.append(payload)
    return first[2], clusters


async def test_listeners_receive_byte_exact_clusters_in_order(
    ws: WS,
    hub: RoomHub,
    alice: Person,
    bob: Person,
    carol: Person,
    open_room: OpenRoom,
    stream: tuple[bytes, bytes, list[bytes]],
) -> None:
    data, init, clusters = stream
    room = await open_room(alice)
    assert room["state"] == "live"
    async with (
        connect_ws(ws, listen_url(room, bob)) as first,
        connect_ws(ws, listen_url(room)) as anonymous,
    ):
        await wait_for(lambda: listeners_in(hub, room) == 2)
        async with connect_ws(ws, speak_url(room, alice)) as speaker:
            speaking = await next_frame(first)
            assert isinstance(speaking, dict) and speaking["type"] == "speaking"
            assert speaking["account_id"] == alice.id
            await send_in_chunks(speaker, data)
            for listener in (first, anonymous):
                got_init, got = await receive_track(listener, len(clusters))
                assert got_init == init
                assert got == clusters


async def test_a_late_joiner_gets_the_init_segment_then_starts_at_a_cluster(
    ws: WS,
    hub: RoomHub,
    alice: Person,
    bob: Person,
    open_room: OpenRoom,
    stream: tuple[bytes, bytes, list[bytes]],
) -> None:
    data, init, clusters = stream
    room = await open_room(alice)
    half = len(data) // 2
    async with connect_ws(ws, speak_url(room, alice)) as speaker:
        await send_in_chunks(speaker, data[:half], 700)
        await wait_for(
            lambda: int(room["id"]) in hub.relays and bool(hub.relays[int(room["id"])].tracks)
        )
        async with connect_ws(ws, listen_url(room, bob)) as late:
            await wait_for(lambda: listeners_in(hub, room) == 1)
            await send_in_chunks(speaker, data[half:], 700)
            first = await next_frame(late)
            assert isinstance(first, tuple)
            assert first[0] == frames.INIT and first[2] == init
            frame = await next_frame(late)
            while isinstance(frame, dict):
                frame = await next_frame(late)
            assert frame[0] == frames.CLUSTER
            start = clusters.index(frame[2])  # a whole Cluster of the stream, not a fragment
            assert start > 0
            rest = [frame[2]]
            while len(rest) < len(clusters) - start:
                more = await next_frame(late)
                if isinstance(more, tuple):
                    rest.append(more[2])
            assert rest == clusters[start:]


async def test_only_speakers_may_send(
    ws: WS, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice)
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with connect_ws(ws, speak_url(room, bob)):
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(WebSocketUpgradeError) as anonymous:
        async with connect_ws(ws, f"/api/v1/rooms/{room['id']}/speak"):
            pass
    assert anonymous.value.response.status_code == 401

    invited = await alice.client.post(
        f"/api/v1/rooms/{room['id']}/speakers", json={"account_id": bob.id}
    )
    assert invited.status_code == 200 and invited.json()["role"] == "speaker"
    async with connect_ws(ws, speak_url(room, bob)) as speaker:
        await speaker.send_bytes(opus_webm(0.5))


async def test_a_muted_speaker_is_cut_off_and_cannot_speak_again(
    ws: WS, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice)
    await alice.client.post(f"/api/v1/rooms/{room['id']}/speakers", json={"account_id": bob.id})
    async with connect_ws(ws, speak_url(room, bob)) as speaker:
        muted = await alice.client.post(
            f"/api/v1/rooms/{room['id']}/mute", json={"account_id": bob.id}
        )
        assert muted.status_code == 200 and muted.json()["muted"] is True
        with pytest.raises(WebSocketDisconnect) as closed:
            await asyncio.wait_for(speaker.receive(), WAIT)
        assert closed.value.code == 4009
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with connect_ws(ws, speak_url(room, bob)):
            pass
    assert refused.value.response.status_code == 403


async def test_a_removed_listener_is_out(
    ws: WS, hub: RoomHub, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice)
    async with connect_ws(ws, listen_url(room, bob)) as listener:
        await wait_for(lambda: listeners_in(hub, room) == 1)
        removed = await alice.client.post(
            f"/api/v1/rooms/{room['id']}/remove", json={"account_id": bob.id}
        )
        assert removed.status_code == 200
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                message = await asyncio.wait_for(listener.receive(), WAIT)
                assert not isinstance(message.data, bytes)
        assert closed.value.code == 4003
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with connect_ws(ws, listen_url(room, bob)):
            pass
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.content)["error"]


async def test_a_private_room_admits_only_those_invited(
    ws: WS, hub: RoomHub, alice: Person, bob: Person, carol: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice, visibility="private")
    for outsider in (bob, None):
        with pytest.raises(WebSocketUpgradeError) as refused:
            async with connect_ws(ws, listen_url(room, outsider)):
                pass
        assert refused.value.response.status_code == 404
    assert (await bob.client.get(f"/api/v1/rooms/{room['id']}")).status_code == 404
    assert room["status_id"] is None  # nothing announced in public timelines

    await alice.client.post(f"/api/v1/rooms/{room['id']}/invite", json={"account_id": bob.id})
    assert (await bob.client.get(f"/api/v1/rooms/{room['id']}")).status_code == 200
    async with connect_ws(ws, listen_url(room, bob)):
        await wait_for(lambda: listeners_in(hub, room) == 1)
    assert (await carol.client.get(f"/api/v1/rooms/{room['id']}")).status_code == 404


async def test_ending_the_room_closes_every_connection(
    ws: WS, hub: RoomHub, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice)
    async with (
        connect_ws(ws, listen_url(room, bob)) as listener,
        connect_ws(ws, speak_url(room, alice)) as speaker,
    ):
        await wait_for(lambda: listeners_in(hub, room) == 1)
        ended = await alice.client.post(f"/api/v1/rooms/{room['id']}/end")
        assert ended.json()["state"] == "ended"
        events = []
        with pytest.raises(WebSocketDisconnect):
            while True:
                message = await asyncio.wait_for(listener.receive(), WAIT)
                if isinstance(message.data, str):
                    events.append(json.loads(message.data)["type"])
        assert "ended" in events
        with pytest.raises(WebSocketDisconnect):
            await asyncio.wait_for(speaker.receive(), WAIT)
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with connect_ws(ws, listen_url(room, bob)):
            pass
    assert refused.value.response.status_code == 409
