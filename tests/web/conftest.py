"""Browsers in-process: httpx clients that keep cookies and send the page's CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Browser:
    http: httpx.AsyncClient
    username: str = ""

    async def csrf(self) -> str:
        """The token a page's forms carry (home for someone logged in, else the login page)."""
        for path in ("/", "/auth/sign_in"):
            found = CSRF.search((await self.http.get(path)).text)
            if found:
                return found.group(1)
        raise AssertionError("no form found")

    async def submit(
        self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        token = await self.csrf()
        return await self.http.post(path, data={"csrf_token": token, **data}, headers=headers)


BrowserFactory = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[BrowserFactory]:
    opened: list[httpx.AsyncClient] = []

    async def open_browser(username: str | None = None) -> Browser:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        opened.append(http)
        browser = Browser(http)
        if username is not None:
            browser.username = username
            answer = await browser.submit(
                "/auth/sign_up",
                {
                    "username": username,
                    "email": f"{username}@example.test",
                    "password": PASSWORD,
                    "agreement": "on",
                },
            )
            assert answer.status_code == 303, answer.text
        return browser

    yield open_browser
    for http in opened:
        await http.aclose()
