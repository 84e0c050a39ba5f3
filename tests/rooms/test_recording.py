"""Tracks as cacheable HTTP segments with a playlist; an ended room replays from them."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from httpx_ws import WebSocketUpgradeError

from tests.conftest import Person
from tests.rooms.conftest import WS, OpenRoom, speak_url
from tests.rooms.webm import decoded_seconds, opus_webm
from tests.streaming.conftest import connect_ws
from townsquare.config import Settings
from townsquare.rooms.ebml import ClusterSplitter


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.rooms_segment_seconds = 0.0  # a segment per Cluster, however fast they come
    settings.rooms_join_rate = 2.0
    return settings


async def test_segments_playlist_and_recording(
    ws: WS, alice: Person, bob: Person, carol: Person, open_room: OpenRoom
) -> None:
    data = opus_webm(2.0)
    splitter = ClusterSplitter()
    clusters = splitter.feed(data)
    room = await open_room(alice, visibility="private")
    await alice.client.post(f"/api/v1/rooms/{room['id']}/invite", json={"account_id": bob.id})
    async with connect_ws(ws, speak_url(room, alice)) as speaker:
        for position in range(0, len(data), 800):
            await speaker.send_bytes(data[position : position + 800])
    ended = await alice.client.post(f"/api/v1/rooms/{room['id']}/end")
    assert ended.json()["state"] == "ended"

    response = await bob.client.get(f"/api/v1/rooms/{room['id']}/playlist")
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("private")
    playlist = response.json()
    assert playlist["live"] is False
    [track] = playlist["tracks"]
    assert track["account_id"] == alice.id and track["ended"] is True
    assert [s["seq"] for s in track["segments"]] == list(range(1, len(clusters) + 1))

    init = await bob.client.get(track["init_url"])
    assert init.content == splitter.init_segment
    segments = []
    for entry in track["segments"]:
        segment = await bob.client.get(entry["url"])
        assert segment.headers["cache-control"] == "private, max-age=31536000, immutable"
        segments.append(segment.content)
    assert segments == clusters

    recording = await bob.client.get(track["recording_url"])
    assert recording.headers["content-type"] == "audio/webm"
    assert decoded_seconds(recording.content) == decoded_seconds(data)

    # Outsiders of a private room see none of it.
    for url in (f"/api/v1/rooms/{room['id']}/playlist", track["init_url"], track["recording_url"]):
        assert (await carol.client.get(url)).status_code == 404
    for name in ("../track.json", "track.json", "init.webm.partial"):
        url = f"/api/v1/rooms/{room['id']}/tracks/{track['track']}/{name}"
        assert (await bob.client.get(url)).status_code == 404


async def test_a_join_storm_gets_503_with_retry_after(
    ws: WS, alice: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice)
    url = f"/api/v1/rooms/{room['id']}/listen"

    async def join() -> httpx.Response | None:
        try:
            async with connect_ws(ws, url):
                return None
        except WebSocketUpgradeError as error:
            return error.response

    answers = await asyncio.gather(*(join() for _ in range(6)))
    refused = [answer for answer in answers if answer is not None]
    # Two a second with a burst of two: at least some of six joins at once wait.
    assert 1 <= len(refused) <= 4
    for answer in refused:
        assert answer.status_code == 503
        assert int(answer.headers["retry-after"]) >= 1
        assert "error" in answer.json()
