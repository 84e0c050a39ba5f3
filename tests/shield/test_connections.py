"""Connections judged when accepted: rates per address and network, and who is let in while the
worker's event loop lags. A real uvicorn server on loopback, real sockets from their own
loopback source addresses."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send

from tests.shield.conftest import guarded_server, hello_app, read_all
from townsquare.config import Settings
from townsquare.shield import connections, server, standing
from townsquare.shield.address_table import AddressTable
from townsquare.shield.connections import KnownAddresses, Vouchers
from townsquare.shield.server import KNOWN_ADDRESS_ALLOWANCE, whole_request


def serve(settings: Settings) -> Iterator[tuple[str, int]]:
    try:
        with guarded_server(hello_app, settings) as address:
            yield address
    finally:
        connections.loop_lag.hold(None)
        connections.known_addresses.clear()
        connections.vouchers.clear()


@pytest.fixture
def rated(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from serve(
        Settings(
            data_dir=tmp_path,
            secret_key="test-secret",
            server_connection_rate_per_address="3/minute",
            server_connection_rate_per_prefix="5/minute",
        )
    )


@pytest.fixture
def lagging(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from serve(Settings(data_dir=tmp_path, secret_key="test-secret"))


def connect(server: tuple[str, int], source: str) -> socket.socket:
    conn = socket.create_connection(server, timeout=5, source_address=(source, 0))
    return conn


def get(server: tuple[str, int], source: str) -> bytes:
    """One request on a new connection, answered before it is sent when refused at accept."""
    with connect(server, source) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_all(conn)


def test_connections_over_the_address_rate_get_a_ready_made_429(
    rated: tuple[str, int],
) -> None:
    for _ in range(3):
        assert get(rated, "127.0.41.1").startswith(b"HTTP/1.1 200")
    refused = get(rated, "127.0.41.1")
    assert refused.startswith(b"HTTP/1.1 429")
    assert b"retry-after: 60" in refused
    assert refused.endswith(b'{"error":"Too many connections opened; try again later"}')
    assert connections.counts.rate_refused >= 1
    # Another address of the same network still has room.
    assert get(rated, "127.0.41.2").startswith(b"HTTP/1.1 200")


def test_an_address_with_a_good_history_may_open_more_connections(
    rated: tuple[str, int],
) -> None:
    connections.remember_token("a-valid-token", "127.0.49.1")
    allowance = 3 * KNOWN_ADDRESS_ALLOWANCE
    for _ in range(allowance):
        assert get(rated, "127.0.49.1").startswith(b"HTTP/1.1 200")
    # Even a known address has a ceiling.
    assert get(rated, "127.0.49.1").startswith(b"HTTP/1.1 429")
    # An unknown neighbour is held to the base rate.
    assert get(rated, "127.0.49.2").startswith(b"HTTP/1.1 429")


def test_connections_over_the_network_rate_are_refused_for_every_address_in_it(
    rated: tuple[str, int],
) -> None:
    for host in range(1, 6):
        assert get(rated, f"127.0.42.{host}").startswith(b"HTTP/1.1 200")
    assert get(rated, "127.0.42.6").startswith(b"HTTP/1.1 429")
    assert get(rated, "127.0.43.1").startswith(b"HTTP/1.1 200")


def test_while_the_loop_lags_unknown_addresses_wait_and_known_ones_are_served(
    lagging: tuple[str, int],
) -> None:
    connections.remember_token("a-valid-token", "127.0.44.1")
    # A keep-alive connection from an unknown address, opened before the lag.
    idle = connect(lagging, "127.0.44.3")
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")

    connections.loop_lag.hold(1.0)
    refused = get(lagging, "127.0.44.2")
    assert refused.startswith(b"HTTP/1.1 503")
    assert b"retry-after: 2" in refused
    assert get(lagging, "127.0.44.1").startswith(b"HTTP/1.1 200")
    # Probes on the machine itself are never turned away.
    assert get(lagging, "127.0.0.1").startswith(b"HTTP/1.1 200")
    # The next request of the open connection is answered before it is parsed, and the
    # connection stays open (a client refused with a close would just reconnect).
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    refused = idle.recv(65536)
    assert refused.startswith(b"HTTP/1.1 503")
    assert b"connection: close" not in refused

    # The lag gone, the refused address gets through, on the same connection too.
    connections.loop_lag.hold(0.0)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")
    idle.close()
    assert get(lagging, "127.0.44.2").startswith(b"HTTP/1.1 200")
    assert connections.counts.lag_refused_connections >= 1
    assert connections.counts.lag_refused_requests >= 1


def test_while_the_loop_lags_an_anonymous_reader_answered_lately_is_still_served(
    lagging: tuple[str, int],
) -> None:
    # Three answers over more than five seconds, at a person's pace.
    now = time.monotonic()
    for seconds_ago in (9.0, 6.0, 3.0):
        standing.history.answered("127.0.44.7", now - seconds_ago)
    connections.loop_lag.hold(1.0)
    try:
        assert get(lagging, "127.0.44.7").startswith(b"HTTP/1.1 200")
        assert get(lagging, "127.0.44.8").startswith(b"HTTP/1.1 503")
    finally:
        standing.history.clear()


def test_while_the_loop_lags_a_new_connection_refused_is_kept_open_for_its_next_request(
    lagging: tuple[str, int],
) -> None:
    connections.loop_lag.hold(1.0)
    with connect(lagging, "127.0.44.5") as conn:
        # A whole request with its body: refused as busy, the connection kept.
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        refused = conn.recv(65536)
        assert refused.startswith(b"HTTP/1.1 503")
        assert b"retry-after: 2" in refused
        assert b"connection: close" not in refused
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 503")
        # Once the lag is over, its next request is served.
        connections.loop_lag.hold(0.0)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")

    connections.loop_lag.hold(1.0)
    # Asked to close, or with a body that has not all arrived, it is refused and closed.
    for request in (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
    ):
        with connect(lagging, "127.0.44.6") as conn:
            conn.sendall(request)
            refused = read_all(conn)
            assert refused.startswith(b"HTTP/1.1 503")
            assert b"connection: close" in refused


def test_a_connection_refused_that_asks_again_at_once_is_answered_later(
    lagging: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "REPEAT_DELAY", 0.5)
    connections.loop_lag.hold(1.0)
    for opened_before_the_lag in (True, False):
        address = "127.0.44.9" if opened_before_the_lag else "127.0.44.10"
        with connect(lagging, address) as conn:
            if opened_before_the_lag:
                connections.loop_lag.hold(0.0)
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert conn.recv(65536).startswith(b"HTTP/1.1 200")
                connections.loop_lag.hold(1.0)
            timings = []
            for _ in range(3):
                started = time.monotonic()
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert conn.recv(65536).startswith(b"HTTP/1.1 503")
                timings.append(time.monotonic() - started)
            # The first refusal at once, the next ones only after the delay, the connection
            # still open.
            assert timings[0] < 0.4
            assert min(timings[1:]) >= 0.45
            # Served again once the lag is over, and refused at once after that.
            connections.loop_lag.hold(0.0)
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            connections.loop_lag.hold(1.0)
            started = time.monotonic()
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 503")
            assert time.monotonic() - started < 0.4
            connections.loop_lag.hold(1.0)


def test_a_worker_nearly_full_of_connections_refuses_unknown_addresses_only(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="test-secret", server_max_connections=16)
    for crowd in serve(settings):
        connections.loop_lag.hold(0.0)  # never lagging: what refuses here is the crowd
        connections.remember_token("a-valid-token", "127.0.45.1")
        idle = []
        try:
            # Seven eighths of uvicorn's cap held open (the last one's request would already
            # find the worker crowded).
            for n in range(14):
                conn = connect(crowd, f"127.0.45.{20 + n}")
                if n < 13:
                    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert conn.recv(65536).startswith(b"HTTP/1.1 200")
                idle.append(conn)
            time.sleep(0.1)
            refused = get(crowd, "127.0.45.2")
            assert refused.startswith(b"HTTP/1.1 503") and b"retry-after: 2" in refused
            # Someone signed in is still served, within the cap uvicorn keeps.
            assert get(crowd, "127.0.45.1").startswith(b"HTTP/1.1 200")
        finally:
            for conn in idle:
                conn.close()
        deadline = time.monotonic() + 5
        while get(crowd, "127.0.45.2").startswith(b"HTTP/1.1 503"):
            assert time.monotonic() < deadline, "still refused with the connections closed"
            time.sleep(0.05)


def test_a_pass_counts_as_a_good_history() -> None:
    known = KnownAddresses()
    known.mark("127.0.45.1", connections.PASSED)
    assert known.standing("127.0.45.1") == connections.PASSED
    # A better history is never lowered by a lesser one.
    known.mark("127.0.45.2", connections.TRUSTED)
    known.mark("127.0.45.2", connections.PASSED)
    assert known.standing("127.0.45.2") == connections.TRUSTED


def test_a_token_seen_from_too_many_addresses_vouches_for_none() -> None:
    known = KnownAddresses()
    vouchers = Vouchers(known, max_addresses=3)
    for host in range(1, 4):
        vouchers.vouch("shared", f"127.0.46.{host}")
    vouchers.vouch("own", "127.0.46.1")
    assert all(known.standing(f"127.0.46.{host}") for host in range(1, 4))
    vouchers.vouch("shared", "127.0.46.4")
    assert known.standing("127.0.46.4") == connections.UNKNOWN
    assert known.standing("127.0.46.2") == connections.UNKNOWN
    vouchers.vouch("shared", "127.0.46.2")
    assert known.standing("127.0.46.2") == connections.UNKNOWN
    # The address of a token used as a person uses one is known again on its next request.
    vouchers.vouch("own", "127.0.46.1")
    assert known.standing("127.0.46.1") == connections.TRUSTED


def test_the_known_addresses_are_bounded() -> None:
    known = KnownAddresses(max_entries=2)
    for host in range(1, 4):
        known.mark(f"127.0.47.{host}", connections.TRUSTED)
    assert len(known) == 2
    assert known.standing("127.0.47.1") == connections.UNKNOWN


def test_workers_share_the_known_addresses_through_one_file(tmp_path: Path) -> None:
    first, second = AddressTable(tmp_path / "known", 1024), AddressTable(tmp_path / "known", 1024)
    try:
        first.mark("127.0.48.1", connections.TRUSTED)
        first.mark("127.0.48.2", connections.PASSED)
        assert second.standing("127.0.48.1") == connections.TRUSTED
        assert second.standing("127.0.48.2") == connections.PASSED
        assert second.standing("127.0.48.3") == connections.UNKNOWN
        # A pass does not lower a valid token's standing; forgetting is seen by all.
        second.mark("127.0.48.1", connections.PASSED)
        assert first.standing("127.0.48.1") == connections.TRUSTED
        second.forget("127.0.48.1")
        assert first.standing("127.0.48.1") == connections.UNKNOWN
        assert len(first) == 1
        # A good history lasts an hour unless renewed.
        assert first.standing("127.0.48.2", now=time.time() + 2 * 3600) == connections.UNKNOWN
    finally:
        first.close()
        second.close()


@pytest.fixture
def streaming(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from serve(
        Settings(data_dir=tmp_path, secret_key="test-secret", rate_limit_streaming="2/minute")
    )


def handshake(server: tuple[str, int], source: str, token: str) -> bytes:
    with connect(server, source) as conn:
        conn.sendall(
            b"GET /api/v1/streaming?stream=public&access_token=" + token.encode() + b" HTTP/1.1\r\n"
            b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        conn.settimeout(5)
        return conn.recv(65536)


def test_handshakes_with_a_token_known_invalid_or_opened_too_often_are_refused_early(
    streaming: tuple[str, int],
) -> None:
    standing.reject(standing.token_digest("forged"))
    refused = handshake(streaming, "127.0.50.1", "forged")
    assert refused.startswith(b"HTTP/1.1 401")
    assert refused.endswith(b'{"error":"The access token is invalid"}')

    # Two openings a minute per token: the third is refused whatever the address.
    for source in ("127.0.50.2", "127.0.50.3"):
        assert not handshake(streaming, source, "busy").startswith(b"HTTP/1.1 429")
    refused = handshake(streaming, "127.0.50.4", "busy")
    assert refused.startswith(b"HTTP/1.1 429")
    assert b"retry-after" in refused
    assert connections.counts.handshakes_refused >= 2


@pytest.fixture
def unseen(tmp_path: Path) -> Iterator[tuple[str, int]]:
    standing.tokens.clear()
    yield from serve(
        Settings(data_dir=tmp_path, secret_key="test-secret", server_unseen_token_rate="2/minute")
    )
    standing.tokens.clear()


def test_handshakes_with_too_many_unseen_tokens_are_refused_before_the_lookup(
    unseen: tuple[str, int],
) -> None:
    # Two tokens this worker has not validated per address a minute (eight per network).
    before = connections.counts.unseen_tokens_refused
    for n in range(2):
        assert not handshake(unseen, "127.0.60.1", f"made-up-{n}").startswith(b"HTTP/1.1 429")
    refused = handshake(unseen, "127.0.60.1", "made-up-2")
    assert refused.startswith(b"HTTP/1.1 429")
    assert b"retry-after: 10" in refused
    assert refused.endswith(
        b'{"error":"Too many new access tokens from this network; try again later"}'
    )
    assert connections.counts.unseen_tokens_refused == before + 1
    # A token validated recently is never counted nor refused, from the same address.
    standing.remember(standing.token_digest("known-good"), verified=False)
    for _ in range(3):
        assert not handshake(unseen, "127.0.60.1", "known-good").startswith(b"HTTP/1.1 429")
    # The same network fills up at four times the per-address rate (eight, three of them
    # spent above).
    statuses = [
        handshake(unseen, f"127.0.60.{n}", f"made-up-{n}-{m}")[:12]
        for n in range(2, 6)
        for m in range(2)
    ]
    assert b"HTTP/1.1 429" not in statuses[:5]
    assert statuses[5:] == [b"HTTP/1.1 429"] * 3
    assert connections.counts.unseen_tokens_refused == before + 4


async def holding_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts every WebSocket and holds it until the client leaves."""
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


@pytest.fixture
def holding(tmp_path: Path) -> Iterator[tuple[str, int]]:
    settings = Settings(
        data_dir=tmp_path, secret_key="test-secret", streaming_max_connections_per_account=2
    )
    try:
        with guarded_server(holding_app, settings) as address:
            yield address
    finally:
        standing.tokens.clear()


def open_stream(server: tuple[str, int], source: str, token: str) -> tuple[socket.socket, bytes]:
    conn = connect(server, source)
    conn.sendall(
        b"GET /api/v1/streaming?stream=public&access_token=" + token.encode() + b" HTTP/1.1\r\n"
        b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    conn.settimeout(5)
    return conn, conn.recv(65536)


def test_a_token_holding_its_accounts_share_of_streams_is_refused_before_the_app(
    holding: tuple[str, int],
) -> None:
    standing.remember(standing.token_digest("holder"), verified=False)
    held = [open_stream(holding, f"127.0.61.{n}", "holder") for n in (1, 2)]
    try:
        assert [answer[:12] for _, answer in held] == [b"HTTP/1.1 101"] * 2
        conn, refused = open_stream(holding, "127.0.61.3", "holder")
        conn.close()
        assert refused.startswith(b"HTTP/1.1 429")
        assert b"Too many streaming connections" in refused
        # Another token is not affected.
        standing.remember(standing.token_digest("other"), verified=False)
        conn, answer = open_stream(holding, "127.0.61.3", "other")
        conn.close()
        assert answer.startswith(b"HTTP/1.1 101")
        # Once one of its streams ends, the token may open another.
        held[0][0].close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            conn, answer = open_stream(holding, "127.0.61.4", "holder")
            conn.close()
            if answer.startswith(b"HTTP/1.1 101"):
                break
            time.sleep(0.05)
        assert answer.startswith(b"HTTP/1.1 101")
    finally:
        for conn, _ in held:
            conn.close()


@pytest.fixture
def minute_of_streams(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from serve(
        Settings(data_dir=tmp_path, secret_key="test-secret", rate_limit_streaming="60/minute")
    )


def test_a_token_cannot_spend_a_minute_of_openings_at_once(
    minute_of_streams: tuple[str, int],
) -> None:
    standing.remember(standing.token_digest("eager"), verified=False)
    try:
        answers = [
            handshake(minute_of_streams, f"127.0.62.{n + 1}", "eager")[:12] for n in range(11)
        ]
    finally:
        standing.tokens.clear()
    # Sixty a minute are counted ten per ten seconds.
    assert b"HTTP/1.1 429" not in answers[:10]
    assert answers[10] == b"HTTP/1.1 429"


def test_while_the_loop_lags_a_good_token_or_a_valid_pass_is_served_from_a_new_address(
    lagging: tuple[str, int],
) -> None:
    standing.remember(standing.token_digest("good-token"), verified=False)
    connections.pass_checker = lambda token, address: token == "valid-pass"
    connections.loop_lag.hold(1.0)
    try:

        def get_with(source: str, header: bytes) -> bytes:
            with connect(lagging, source) as conn:
                conn.sendall(
                    b"GET / HTTP/1.1\r\nHost: x\r\n" + header + b"Connection: close\r\n\r\n"
                )
                return read_all(conn)

        # Someone signed in, on a network the worker has never seen (a phone leaving wifi).
        assert get_with("127.0.63.1", b"Authorization: Bearer good-token\r\n").startswith(
            b"HTTP/1.1 200"
        )
        assert get_with("127.0.63.2", b"Cookie: a=b; townsquare_session=good-token\r\n").startswith(
            b"HTTP/1.1 200"
        )
        assert get_with("127.0.63.3", b"X-Townsquare-Pass: valid-pass\r\n").startswith(
            b"HTTP/1.1 200"
        )
        # A made-up token or pass is turned away like no credential at all, without a lookup.
        for header in (
            b"Authorization: Bearer made-up\r\n",
            b"X-Townsquare-Pass: forged-pass\r\n",
            b"",
        ):
            refused = get_with("127.0.63.4", header)
            assert refused.startswith(b"HTTP/1.1 503")
            assert b"retry-after: 2" in refused
    finally:
        connections.pass_checker = None
        standing.tokens.clear()


@pytest.mark.parametrize(
    ("data", "whole"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 2\r\n\r\nab", True),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na", False),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", False),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", False),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", False),
    ],
)
def test_only_one_whole_request_is_answered_with_the_connection_kept(
    data: bytes, whole: bool
) -> None:
    assert whole_request(data) is whole


def test_while_the_worker_holds_its_most_connections_without_a_parser_refusals_close(
    lagging: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_HELD_CONNECTIONS", 0)
    connections.loop_lag.hold(1.0)
    with connect(lagging, "127.0.44.9") as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        refused = read_all(conn)
    assert refused.startswith(b"HTTP/1.1 503")
    assert b"connection: close" in refused
