"""Limits per address prefix, and the real client behind trusted proxies."""

from __future__ import annotations

from tests.shield.conftest import AppFactory, client_from
from townsquare.shield.addresses import ForwardedFor

PATH = "/api/v1/no-such-endpoint"


async def test_neighbouring_addresses_share_a_prefix_budget(shielded: AppFactory) -> None:
    app = await shielded(rate_limit_anonymous="100/minute", rate_limit_anonymous_prefix="4/minute")
    codes = []
    for n in range(5):
        async with client_from(app, f"203.0.113.{n + 1}") as http:
            codes.append((await http.get(PATH)).status_code)
    assert codes == [404, 404, 404, 404, 429]
    # Another network is counted apart.
    async with client_from(app, "198.51.100.1") as http:
        assert (await http.get(PATH)).status_code == 404
    async with (
        client_from(app, "2001:db8:aa:1::1") as one,
        client_from(app, "2001:db8:aa:2::1") as other,
    ):
        assert [(await one.get(PATH)).status_code for _ in range(4)] == [404] * 4
        assert (await other.get(PATH)).status_code == 429  # same /48


async def test_login_attempts_are_limited_per_prefix(shielded: AppFactory) -> None:
    app = await shielded(rate_limit_login="100/minute", rate_limit_login_prefix="2/minute")
    codes = []
    for n in range(3):
        async with client_from(app, f"203.0.113.{n + 1}") as http:
            response = await http.post(
                "/oauth/token", data={"grant_type": "password", "username": "a", "password": "b"}
            )
            codes.append(response.status_code)
    assert 429 not in codes[:2]
    assert codes[2] == 429


async def test_only_trusted_proxies_are_believed(shielded: AppFactory) -> None:
    app = await shielded(shield_trusted_proxies="10.0.0.0/8", rate_limit_anonymous="2/minute")
    forwarded = {"X-Forwarded-For": "192.0.2.1"}
    async with client_from(app, "10.1.2.3", headers=forwarded) as proxy:
        assert [(await proxy.get(PATH)).status_code for _ in range(3)] == [404, 404, 429]
    # The same proxy forwarding someone else: their own budget.
    async with client_from(app, "10.1.2.3", headers={"X-Forwarded-For": "192.0.2.2"}) as proxy:
        assert (await proxy.get(PATH)).status_code == 404
    # A client that is not a proxy cannot pick its address.
    async with client_from(app, "198.51.100.9", headers={"X-Forwarded-For": "192.0.2.3"}) as liar:
        assert [(await liar.get(PATH)).status_code for _ in range(3)] == [404, 404, 429]


def test_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    proxies = ForwardedFor("10.0.0.0/8, 127.0.0.1/32")

    def client(peer: str, header: str) -> str:
        scope = {"client": (peer, 1), "headers": [(b"x-forwarded-for", header.encode())]}
        proxies.apply(scope)
        return str(scope["client"][0])

    assert client("127.0.0.1", "192.0.2.1, 10.0.0.2") == "192.0.2.1"
    assert client("127.0.0.1", "6.6.6.6, 192.0.2.1, 10.0.0.2") == "192.0.2.1"
    assert client("192.0.2.50", "6.6.6.6") == "192.0.2.50"
    assert client("127.0.0.1", "not-an-address") == "127.0.0.1"
    assert not ForwardedFor("")
