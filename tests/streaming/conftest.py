"""Opening streams in-process: WebSockets through httpx-ws, event streams through a transport
that hands the response over as soon as its headers are sent (httpx's own ASGI transport waits
for the whole body, which a stream never finishes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.types import Message, Receive, Scope, Send

from tests.conftest import Person
from townsquare.config import Settings
from townsquare.graph.models import Block, Follow, Mute
from townsquare.ids import new_id
from townsquare.jobs.runner import run_pending_jobs
from townsquare.state import state_of
from townsquare.statuses.models import Mention, Status
from townsquare.timelines.fanout import enqueue_fanout

WebSocketApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Long enough for anything in-process, short enough that a hang fails fast.
WAIT = 5.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.streaming_heartbeat = 0.2
    settings.streaming_poll_interval = 0.02
    settings.streaming_hidden_refresh = 0.2
    return settings


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(
        self, chunks: asyncio.Queue[bytes | None], gone: asyncio.Event, task: asyncio.Task[None]
    ) -> None:
        self.chunks = chunks
        self.gone = gone
        self.task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self.gone.set()
        try:
            await asyncio.wait_for(self.task, WAIT)
        except TimeoutError:
            self.task.cancel()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port or 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
        }
        started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        gone = asyncio.Event()
        body_sent = False

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                await chunks.put(message.get("body", b""))
                if not message.get("more_body", False):
                    await chunks.put(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as error:
                if not started.done():
                    started.set_exception(error)
            finally:
                if not started.done():
                    started.set_exception(RuntimeError("no response"))
                await chunks.put(None)

        task = asyncio.create_task(run())
        start = await asyncio.wait_for(started, WAIT)
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=_ResponseBody(chunks, gone, task),
            request=request,
        )


def _with_denial_responses(app: FastAPI) -> WebSocketApp:
    """Announce the WebSocket denial-response extension, as uvicorn does."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "extensions": {"websocket.http.response": {}}}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
async def sse(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = StreamingASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def ws(app: FastAPI) -> WebSocketApp:
    """The app as a WebSocket server sees it; open connections with :func:`connect_ws`."""
    return _with_denial_responses(app)


@contextlib.asynccontextmanager
async def connect_ws(
    ws: WebSocketApp,
    url: str,
    *,
    subprotocols: list[str] | None = None,
) -> AsyncIterator[AsyncWebSocketSession]:
    # The transport's task group must be entered and left in the same task: the test's own.
    # The app must accept within ten seconds (the library's one second is short on a busy
    # machine); a test waiting on a handshake that never comes still ends.
    transport = ASGIWebSocketTransport(app=ws, initial_receive_timeout=10.0)
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
            aconnect_ws(
                url, http, subprotocols=subprotocols, session_class=AsyncWebSocketSession
            ) as session,
        ):
            yield session
    except BaseExceptionGroup as group:
        # The transport's task group wraps errors; show the one that happened.
        leaves = list(_leaves(group))
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


class EventReader:
    """Reads ``event:``/``data:`` blocks from an event stream, skipping heartbeats."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.comments = 0

    async def next(self) -> tuple[str, str]:
        return await asyncio.wait_for(self._next(), WAIT)

    async def _next(self) -> tuple[str, str]:
        event, data = "", []
        async for line in self.lines:
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif line == "" and event:
                return event, "\n".join(data)
        raise AssertionError("the stream ended")


@contextlib.asynccontextmanager
async def open_stream(
    sse: httpx.AsyncClient, person: Person, path: str, **params: str
) -> AsyncIterator[EventReader]:
    async with sse.stream(
        "GET", f"/api/v1/streaming/{path}", params=params, headers=person.headers
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response)


Post = Callable[..., Awaitable[int]]
Relate = Callable[[Person, Person], Awaitable[None]]


@pytest.fixture
def post(app: FastAPI) -> Post:
    """``await post(author, "text", visibility=..., mentions=[...])`` → the status id, after
    its fan-out job has run."""
    state = state_of(app)

    async def create(
        author: Person,
        text: str = "hello",
        *,
        visibility: str = "public",
        mentions: Sequence[Person] = (),
    ) -> int:
        async with state.db.write() as session:
            status = Status(
                id=new_id(),
                account_id=author.account.id,
                text=text,
                content_html=f"<p>{text}</p>",
                visibility=visibility,
            )
            session.add(status)
            await session.flush()
            for person in mentions:
                session.add(Mention(status_id=status.id, account_id=person.account.id))
            enqueue_fanout(session, status)
        await run_pending_jobs(state, wait_seconds=WAIT)
        return status.id

    return create


def _relation(app: FastAPI, model: type[Follow] | type[Block] | type[Mute]) -> Relate:
    state = state_of(app)

    async def create(actor: Person, target: Person) -> None:
        async with state.db.write() as session:
            session.add(
                model(id=new_id(), account_id=actor.account.id, target_account_id=target.account.id)
            )

    return create


@pytest.fixture
def follow(app: FastAPI) -> Relate:
    return _relation(app, Follow)


@pytest.fixture
def block(app: FastAPI) -> Relate:
    return _relation(app, Block)


@pytest.fixture
def mute(app: FastAPI) -> Relate:
    return _relation(app, Mute)
