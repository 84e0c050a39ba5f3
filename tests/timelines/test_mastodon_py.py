"""Mastodon.py, unchanged, reading timelines, lists and markers (in process, over a bridge)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import requests
from fastapi import FastAPI
from mastodon import Mastodon
from requests.adapters import BaseAdapter

from tests.conftest import Person
from tests.timelines.conftest import Post, Relate

T = TypeVar("T")


class AsgiBridge(BaseAdapter):
    """A requests adapter that hands each request to the app on the test's event loop."""

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        self.loop = loop

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, *_args: Any, **_kwargs: Any
    ) -> requests.Response:
        body = request.body
        content = (
            body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else None
        )
        headers = {
            key: value.decode() if isinstance(value, bytes) else value
            for key, value in request.headers.items()
        }
        call = self.client.request(
            request.method or "GET", request.url or "", content=content, headers=headers
        )
        answer = asyncio.run_coroutine_threadsafe(call, self.loop).result(timeout=30)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers.update(answer.headers)
        response._content = answer.content
        response.url = str(answer.url)
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass


def ids_of(items: Any) -> list[int]:
    return [int(item.id) for item in items]


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)


async def test_mastodon_py_reads_timelines_lists_and_markers(
    app: FastAPI, alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    bridge = AsgiBridge(app, asyncio.get_running_loop())
    session = requests.Session()
    session.mount("http://testserver", bridge)
    api = Mastodon(
        access_token=alice.token,
        api_base_url="http://testserver",
        session=session,
        version_check_mode="none",
    )
    await follow(alice, bob)
    first = await post(bob, "first #hello", tags=["hello"])
    second = await post(bob, "second")

    home = await in_thread(api.timeline_home, limit=1)
    assert ids_of(home) == [second]
    older = await in_thread(api.fetch_next, home)
    assert ids_of(older) == [first]
    tagged = await in_thread(api.timeline_hashtag, "hello")
    assert ids_of(tagged) == [first]
    assert ids_of(await in_thread(api.timeline_public, local=True)) == [second, first]

    created = await in_thread(api.list_create, "Bobs", replies_policy="none")
    await in_thread(api.list_accounts_add, created, [bob.account.id])
    assert ids_of(await in_thread(api.list_accounts, created)) == [bob.account.id]
    assert ids_of(await in_thread(api.account_lists, bob.account.id)) == [int(created.id)]
    renamed = await in_thread(api.list_update, created, "Only Bob", replies_policy="list")
    assert (renamed.title, renamed.replies_policy) == ("Only Bob", "list")
    listed = await in_thread(api.timeline_list, created)
    assert ids_of(listed) == [second, first]
    assert [item.title for item in await in_thread(api.lists)] == ["Only Bob"]

    saved = await in_thread(api.markers_set, ["home"], [second])
    assert int(saved["home"].last_read_id) == second
    assert saved["home"].version == 1
    shown = await in_thread(api.markers_get, ["home", "notifications"])
    assert int(shown["home"].last_read_id) == second

    await in_thread(api.list_accounts_delete, created, [bob.account.id])
    await in_thread(api.list_delete, created)
    assert list(await in_thread(api.lists)) == []
    await bridge.client.aclose()
