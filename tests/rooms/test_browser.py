"""End to end in headless Chromium against a real ``townsquare serve``: one page speaks through
its (fake) microphone, other pages play the room through MediaSource Extensions."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.web.server import CHROMIUM, CHROMIUM_ARGS, running_server

pytestmark = [
    pytest.mark.acceptance,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
]
MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("rooms-browser")) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *MEDIA_ARGS]
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_up(url: str, username: str) -> str:
    """A new account's access token, through the API as any client would get one."""
    app = httpx.post(
        f"{url}/api/v1/apps",
        json={
            "client_name": "rooms",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read write",
        },
    ).json()
    app_token = httpx.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read write",
        },
    ).json()["access_token"]
    created = httpx.post(
        f"{url}/api/v1/accounts",
        headers={"Authorization": f"Bearer {app_token}"},
        json={
            "username": username,
            "email": f"{username}@example.test",
            "password": "a long enough password",
            "agreement": True,
            "locale": "en",
        },
    )
    assert created.status_code == 200, created.text
    token: str = created.json()["access_token"]
    return token


def open_room_page(browser: Browser, url: str, room_id: str, token: str) -> Page:
    context = browser.new_context()  # its own storage: its own token
    page = context.new_page()
    page.goto(f"{url}/rooms/{room_id}#access_token={token}")
    page.wait_for_selector("#state.live")
    return page


def stats(page: Page) -> dict[str, object]:
    value: dict[str, object] = page.evaluate("() => ({...window.roomStats})")
    return value


def test_one_page_speaks_and_others_play(chromium: Browser, server: str) -> None:
    host, first, later = (sign_up(server, name) for name in ("hosta", "listenb", "latec"))
    room = httpx.post(
        f"{server}/api/v1/rooms",
        json={"title": "Browser room"},
        headers={"Authorization": f"Bearer {host}"},
    ).json()
    speaker = open_room_page(chromium, server, room["id"], host)
    listener = open_room_page(chromium, server, room["id"], first)
    assert listener.locator("#title").inner_text() == "Browser room"
    assert listener.locator("#speak").is_hidden()  # a listener has no microphone button

    listener.click("#listen")
    speaker.click("#speak")
    speaker.wait_for_function("window.roomStats.chunksSent >= 4", timeout=WAIT_MS)
    # The listener hears the speaker: Clusters reach its MediaSource and sound comes out.
    listener.wait_for_function(
        "window.roomStats.clustersAppended >= 8 && window.roomStats.level > 0.01",
        timeout=WAIT_MS,
    )
    # It plays at the live edge, not from the start of what it was sent.
    behind = stats(listener)["behind"]
    assert isinstance(behind, float | int) and behind < 1.5

    # A late joiner starts with the init segment and a whole Cluster, and plays too.
    late = open_room_page(chromium, server, room["id"], later)
    late.click("#listen")
    late.wait_for_function(
        "window.roomStats.clustersAppended >= 4 && window.roomStats.level > 0.01",
        timeout=WAIT_MS,
    )
    assert stats(late)["tracks"] == 1

    # The host ends the room; listeners are told, and the recording can be replayed.
    speaker.click("#end")
    listener.wait_for_selector("#state.ended", timeout=WAIT_MS)
    listener.wait_for_selector("#replay audio", state="attached", timeout=WAIT_MS)
    playlist = httpx.get(f"{server}/api/v1/rooms/{room['id']}/playlist").json()
    assert playlist["live"] is False and playlist["tracks"][0]["segments"]
    recording = httpx.get(f"{server}{playlist['tracks'][0]['recording_url']}")
    assert recording.status_code == 200 and len(recording.content) > 1000


def test_the_room_page_exists_only_for_room_ids(server: str) -> None:
    assert httpx.get(f"{server}/rooms/not-a-room").status_code == 404
    assert (
        httpx.get(f"{server}/rooms/static/room.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert httpx.get(f"{server}/rooms/static/secret.py").status_code == 404
