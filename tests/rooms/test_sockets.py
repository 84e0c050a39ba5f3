"""Over real TCP, served as ``townsquare serve`` serves: the relay writes each frame, framed
once, straight to the listeners' sockets, and a client (here one that agreed on
permessage-deflate) gets the same whole messages as through the ASGI path."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import Person
from tests.rooms.conftest import OpenRoom, wait_for
from tests.rooms.webm import opus_webm
from townsquare.rooms import frames, wire
from townsquare.rooms.ebml import ClusterSplitter
from townsquare.rooms.hub import RoomHub
from townsquare.rooms.relay import SocketListener

WAIT = 15.0


def socket_listeners(hub: RoomHub, room: dict[str, str]) -> int:
    relay = hub.relays.get(int(room["id"]))
    return sum(isinstance(one, SocketListener) for one in relay.listeners) if relay else 0


async def next_media(listener: ClientConnection) -> tuple[int, int, bytes]:
    while True:
        message = await asyncio.wait_for(listener.recv(), WAIT)
        if isinstance(message, bytes):
            return frames.parse_frame(message)
        assert json.loads(message)["type"]  # events arrive whole too


def test_messages_are_framed_as_websocket_frames() -> None:
    assert wire.binary_message(b"ab") == b"\x82\x02ab"
    assert wire.text_message("{}") == b"\x81\x02{}"
    assert wire.binary_message(b"x" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert wire.binary_message(b"x" * 70_000)[:10] == b"\x82\x7f" + (70_000).to_bytes(8, "big")


async def test_a_late_joiner_over_tcp_gets_the_init_segment_then_whole_clusters(
    tcp_server: str, hub: RoomHub, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    data = opus_webm(3.0)
    splitter = ClusterSplitter()
    clusters = splitter.feed(data)
    init = splitter.init_segment
    assert init is not None
    room = await open_room(alice)
    base = f"ws://{tcp_server}/api/v1/rooms/{room['id']}"
    half = len(data) // 2
    async with connect(f"{base}/speak?access_token={alice.token}") as speaker:
        for position in range(0, half, 700):
            await speaker.send(data[position : min(position + 700, half)])
        await wait_for(
            lambda: int(room["id"]) in hub.relays and bool(hub.relays[int(room["id"])].tracks)
        )
        async with connect(f"{base}/listen?access_token={bob.token}") as late:
            assert late.protocol.extensions  # permessage-deflate, yet frames go uncompressed
            await wait_for(lambda: socket_listeners(hub, room) == 1)
            for position in range(half, len(data), 700):
                await speaker.send(data[position : position + 700])
            kind, track, payload = await next_media(late)
            assert (kind, payload) == (frames.INIT, init)
            kind, _track, payload = await next_media(late)
            assert kind == frames.CLUSTER
            start = clusters.index(payload)  # a whole Cluster of the stream, not a fragment
            assert start > 0
            rest = [payload]
            while len(rest) < len(clusters) - start:
                kind, same_track, payload = await next_media(late)
                assert (kind, same_track) == (frames.CLUSTER, track)
                rest.append(payload)
            assert rest == clusters[start:]
    # The track was recorded as it went.
    playlist_url = f"/api/v1/rooms/{room['id']}/playlist"
    for _ in range(int(WAIT / 0.05)):
        playlist = (await alice.client.get(playlist_url)).json()
        if playlist["tracks"] and playlist["tracks"][0]["ended"]:
            break
        await asyncio.sleep(0.05)
    recording = await alice.client.get(playlist["tracks"][0]["recording_url"])
    assert recording.status_code == 200
    assert recording.content.startswith(init) and recording.content.endswith(clusters[-1])


async def test_removal_and_the_end_close_socket_listeners_with_their_codes(
    tcp_server: str,
    hub: RoomHub,
    alice: Person,
    bob: Person,
    carol: Person,
    open_room: OpenRoom,
) -> None:
    room = await open_room(alice)
    base = f"ws://{tcp_server}/api/v1/rooms/{room['id']}/listen"
    async with (
        connect(f"{base}?access_token={bob.token}") as removed,
        connect(f"{base}?access_token={carol.token}") as staying,
    ):
        await wait_for(lambda: socket_listeners(hub, room) == 2)
        response = await alice.client.post(
            f"/api/v1/rooms/{room['id']}/remove", json={"account_id": bob.id}
        )
        assert response.status_code == 200, response.text
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(removed.recv(), WAIT)
        assert removed.close_code == 4003
        response = await alice.client.post(f"/api/v1/rooms/{room['id']}/end")
        assert response.status_code == 200, response.text
        events = []
        with pytest.raises(ConnectionClosed):
            while True:
                events.append(json.loads(await asyncio.wait_for(staying.recv(), WAIT))["type"])
        assert "ended" in events and staying.close_code == 1000
    await wait_for(lambda: int(room["id"]) not in hub.relays)
