"""Challenges handed out at the door: what the connection layer answers before a parse, and
what it leaves to the app. Door decisions on their own, then a real uvicorn server on
loopback with the connection layer in front of a trivial app."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.shield.conftest import guarded_server, hello_app
from townsquare.config import Settings
from townsquare.shield import connections
from townsquare.shield import server as guarded
from townsquare.shield.cache import AnonymousCache, CachedResponse
from townsquare.shield.door import Door, puzzle_difficulty
from townsquare.shield.mode import AttackMode, set_forced_mode
from townsquare.shield.passes import PassIssuer, solve
from townsquare.shield.standing import history

ADDRESS = "127.0.70.9"
PREFIX = "127.0.70.0/24"


def head(
    target: str = "/api/v1/timelines/public?max_id=5", *lines: str, version: str = "1.1"
) -> bytes:
    request = [f"GET {target} HTTP/{version}", "Host: x", *lines]
    return ("\r\n".join(request) + "\r\n\r\n").encode()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key="test-secret", shield_pow_difficulty=8)


@pytest.fixture
def door(settings: Settings) -> Door:
    set_forced_mode(settings, "on")
    cache = AnonymousCache(ttl=60.0, max_entries=10, extra_headers=[])
    return Door(AttackMode(settings), PassIssuer(settings), cache, settings.shield_pow_difficulty)


def split(answer: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    top, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = top.split(b"\r\n")
    fields = dict(line.split(b": ", 1) for line in lines)
    return status, fields, body


def test_a_plain_anonymous_read_under_attack_gets_a_challenge_it_can_redeem(
    door: Door, settings: Settings
) -> None:
    answer = door.answer(head(), ADDRESS)
    assert answer is not None
    response, closing = answer
    assert not closing
    status, fields, body = split(response)
    assert status == b"HTTP/1.1 429 Too Many Requests"
    assert fields[b"content-length"] == str(len(body)).encode()
    assert fields[b"retry-after"] == b"1"
    assert fields[b"access-control-allow-origin"] == b"*"
    entity = orjson.loads(body)
    assert entity["error"] == "Prove you are not a flood to continue"
    challenge = entity["challenge"]
    assert challenge["difficulty"] == 8
    nonce = solve(challenge["challenge"], challenge["difficulty"])
    # Bound to the client's network, like the app's own challenges.
    token, _ = door.issuer.redeem(challenge["challenge"], nonce, PREFIX)
    assert door.issuer.check(token, PREFIX) is not None
    assert door.challenged == 1


def test_only_while_under_attack(door: Door, settings: Settings) -> None:
    set_forced_mode(settings, "off")
    door.mode.refresh()
    assert door.answer(head(), ADDRESS) is None


@pytest.mark.parametrize(
    "request_head",
    [
        head("/api/v1/timelines/public", "Authorization: Bearer abc"),
        head("/api/v1/timelines/public?access_token=abc"),
        head("/", "Cookie: townsquare_session=abc"),
        head("/api/v1/timelines/public", "X-Townsquare-Pass: p1.x"),
        head("/api/v1/timelines/public", "Cookie: a=b; townsquare_pass=p1.x"),
        head("/oauth/token"),
        head("/api/v1/instance"),
        head("/api/v1/shield/challenge"),
        head("/shield/pow-worker.js"),
        head("/healthz"),
        head("/api/v1/streaming/public"),
        head("/api/v1/streaming", "Upgrade: websocket", "Connection: Upgrade"),
        head("/api/v1/timelines/%70ublic"),
        head("/api/v1/timelines/public", "Content-Length: 3"),
        b"POST /api/v1/statuses HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/timelines/public HTTP/2\r\nHost: x\r\n\r\n",
        b"GET nonsense\r\nHost: x\r\n\r\n",
    ],
)
def test_anything_but_a_plain_anonymous_read_is_left_to_the_app(
    door: Door, request_head: bytes
) -> None:
    assert door.answer(request_head, ADDRESS) is None
    assert door.challenged == 0


def test_cached_reads_are_left_to_the_cache(door: Door) -> None:
    cache = door.cache
    assert cache is not None
    cache._store(b"/api/v1/timelines/public?local=true", {"status": 200, "headers": []}, b"[]")
    assert door.answer(head("/api/v1/timelines/public?local=true"), ADDRESS) is None
    assert door.answer(head("/api/v1/timelines/public?local=false"), ADDRESS) is not None


def test_expired_cache_entries_do_not_hold_the_door(door: Door) -> None:
    cache = door.cache
    assert cache is not None
    cache._entries[b"/api/v1/timelines/public?"] = CachedResponse(200, [], b"[]", 0.0)
    assert door.answer(head("/api/v1/timelines/public"), ADDRESS) is not None


def test_browsers_get_the_page_that_solves_it(door: Door) -> None:
    answer = door.answer(head("/@alice", "Accept: text/html,*/*"), ADDRESS)
    assert answer is not None
    _, fields, body = split(answer[0])
    assert fields[b"content-type"] == b"text/html; charset=utf-8"
    assert b"__CHALLENGE__" not in body
    # The API answers JSON, whatever the client accepts.
    answer = door.answer(head("/api/v1/timelines/public", "Accept: text/html"), ADDRESS)
    assert answer is not None
    assert split(answer[0])[1][b"content-type"] == b"application/json"


@pytest.mark.parametrize(
    "request_head",
    [head(version="1.0"), head("/api/v1/timelines/public", "Connection: close")],
)
def test_clients_that_asked_to_close_are_closed(door: Door, request_head: bytes) -> None:
    answer = door.answer(request_head, ADDRESS)
    assert answer is not None
    response, closing = answer
    assert closing
    assert split(response)[1][b"connection"] == b"close"


@pytest.fixture
def server(settings: Settings, door: Door) -> Iterator[tuple[str, int]]:
    connections.door = door.answer
    connections.counts.clear()
    try:
        with guarded_server(hello_app, settings) as address:
            yield address
    finally:
        connections.door = None
        connections.counts.clear()


def exchange(conn: socket.socket, request: bytes) -> bytes:
    """Send one request on a keep-alive connection; its whole answer."""
    conn.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += conn.recv(65536)
    top, _, body = answer.partition(b"\r\n\r\n")
    length = int(split(top + b"\r\n\r\n")[1].get(b"content-length", b"0"))
    while len(body) < length:
        body += conn.recv(65536)
    return top + b"\r\n\r\n" + body


def test_the_connection_layer_answers_before_the_app_and_keeps_the_connection(
    server: tuple[str, int], door: Door
) -> None:
    conn = socket.create_connection(server, timeout=5, source_address=(ADDRESS, 0))
    with conn:
        challenged = exchange(conn, head())
        assert challenged.startswith(b"HTTP/1.1 429")
        assert connections.counts.door_challenged == 1
        # The same connection goes on: a request the door leaves alone reaches the app.
        served = exchange(conn, head("/api/v1/timelines/public", "X-Townsquare-Pass: p1.x"))
        assert served.startswith(b"HTTP/1.1 200") and served.endswith(b"ok")
        assert exchange(conn, head()).startswith(b"HTTP/1.1 429")
    assert connections.counts.door_challenged == 2


def test_a_connection_challenged_again_at_once_gets_its_challenge_later(
    server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guarded, "REPEAT_DELAY", 0.5)
    conn = socket.create_connection(server, timeout=5, source_address=(ADDRESS, 0))
    with conn:
        timings = []
        for _ in range(3):
            started = time.monotonic()
            assert exchange(conn, head()).startswith(b"HTTP/1.1 429")
            timings.append(time.monotonic() - started)
        # Came back without the pass it was asked for: answered only after the delay.
        assert timings[0] < 0.4
        assert min(timings[1:]) >= 0.45
        # With a pass the request goes on at once, and the next challenge is prompt again.
        served = exchange(conn, head("/api/v1/timelines/public", "X-Townsquare-Pass: p1.x"))
        assert served.endswith(b"ok")
        started = time.monotonic()
        assert exchange(conn, head()).startswith(b"HTTP/1.1 429")
        assert time.monotonic() - started < 0.4


def test_the_door_stays_open_when_not_under_attack(
    server: tuple[str, int], door: Door, settings: Settings
) -> None:
    set_forced_mode(settings, "off")
    door.mode.refresh()
    conn = socket.create_connection(server, timeout=5, source_address=(ADDRESS, 0))
    with conn:
        assert exchange(conn, head()).endswith(b"ok")
    assert connections.counts.door_challenged == 0


def test_at_the_door_too_a_reader_answered_lately_gets_a_smaller_puzzle(door: Door) -> None:
    history.clear()
    try:
        for moment in (0.0, 3.0, 6.0):
            history.answered(ADDRESS, time.monotonic() - 10 + moment)
        answer = door.answer(head(), ADDRESS)
        assert answer is not None
        entity = orjson.loads(split(answer[0])[2])
        assert entity["challenge"]["difficulty"] == puzzle_difficulty(8, known=True)
        answer = door.answer(head(), "127.0.71.9")
        assert answer is not None
        assert orjson.loads(split(answer[0])[2])["challenge"]["difficulty"] == 8
    finally:
        history.clear()
