"""The room page from the web app: its session cookie reads, and changes need the CSRF token."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from tests.conftest import Person
from tests.rooms.conftest import OpenRoom
from townsquare.oauth.service import issue_token
from townsquare.state import state_of
from townsquare.streaming.auth import SESSION_COOKIE
from townsquare.web.sessions import SESSION_SCOPES


async def test_a_web_session_reads_and_acts_with_the_page_csrf_token(
    app: FastAPI, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice, visibility="private")
    await alice.client.post(f"/api/v1/rooms/{room['id']}/invite", json={"account_id": bob.id})
    async with state_of(app).db.write() as session:
        issued = await issue_token(
            session, app_id=None, account_id=bob.account.id, scopes=SESSION_SCOPES
        )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as browser:
        browser.cookies.set(SESSION_COOKIE, issued.access_token)
        page = await browser.get(f"/rooms/{room['id']}")
        assert page.status_code == 200
        match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert match is not None
        csrf = match.group(1)

        # Reading a private room the session's account was invited to.
        shown = await browser.get(f"/api/v1/rooms/{room['id']}")
        assert shown.status_code == 200 and shown.json()["title"] == room["title"]

        hand = f"/api/v1/rooms/{room['id']}/hand"
        assert (await browser.post(hand)).status_code == 403  # no CSRF token
        foreign = await browser.post(
            hand, headers={"X-CSRF-Token": csrf, "Origin": "https://elsewhere.example"}
        )
        assert foreign.status_code == 403
        raised = await browser.post(hand, headers={"X-CSRF-Token": csrf})
        assert raised.status_code == 200 and raised.json()["hand_raised_at"]

        browser.cookies.clear()
        assert (await browser.get(f"/api/v1/rooms/{room['id']}")).status_code == 404
