"""Under-attack mode: anonymous requests need a proof-of-work pass; logged-in users never do."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import Person
from tests.shield.conftest import AppFactory, client_from, shield_of, under_attack
from townsquare.oauth.tokens import digest
from townsquare.shield import standing
from townsquare.shield.passes import leading_zero_bits, solve, solves

PUBLIC = "/api/v1/statuses/1"


async def earn_pass(http: httpx.AsyncClient) -> dict[str, object]:
    challenge = (await http.get("/api/v1/shield/challenge")).json()
    assert challenge["algorithm"] == "sha256"
    nonce = solve(challenge["challenge"], challenge["difficulty"])
    response = await http.post(
        "/api/v1/shield/pass", json={"challenge": challenge["challenge"], "nonce": nonce}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_leading_zero_bits_are_counted_across_bytes() -> None:
    assert leading_zero_bits(b"\x00\x00\x80") == 16
    assert leading_zero_bits(b"\x00\x0f") == 12
    assert leading_zero_bits(b"\xff") == 0
    nonce = solve("abc", 10)
    assert solves("abc", nonce, 10)


async def test_anonymous_requests_get_a_challenge_they_can_solve(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.get(PUBLIC)).status_code == 404  # no attack: served as usual
    under_attack(app)

    refused = await client.get(PUBLIC)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"]
    challenge = body["challenge"]
    assert challenge["algorithm"] == "sha256"
    assert challenge["difficulty"] == 8
    assert challenge["expires_at"].endswith("Z")

    nonce = solve(challenge["challenge"], challenge["difficulty"])
    earned = await client.post(
        "/api/v1/shield/pass", json={"challenge": challenge["challenge"], "nonce": nonce}
    )
    assert earned.status_code == 200
    token = earned.json()["pass"]
    assert earned.json()["effort"] == 8
    assert earned.json()["expires_at"].endswith("Z")

    # The pass works as a header, and as the cookie the answer set.
    headers = {"X-Townsquare-Pass": token}
    assert (await client.get(PUBLIC, headers=headers)).status_code == 404
    assert client.cookies.get("townsquare_pass") == token
    assert (await client.get(PUBLIC)).status_code == 404
    assert shield_of(app).metrics.passes_issued == 1

    # A challenge buys one pass only.
    again = await client.post(
        "/api/v1/shield/pass", json={"challenge": challenge["challenge"], "nonce": nonce}
    )
    assert again.status_code == 422
    assert again.json() == {"error": "The challenge has already been used"}


async def test_wrong_or_forged_solutions_earn_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    challenge = (await client.get("/api/v1/shield/challenge")).json()["challenge"]
    nonce = solve(challenge, 8)
    wrong = next(str(n) for n in range(1000) if not solves(challenge, str(n), 8))
    cases = [
        ({"challenge": challenge, "nonce": wrong}, "The nonce does not solve the challenge"),
        (
            {"challenge": challenge.replace(".8.", ".1.", 1), "nonce": nonce},
            "The challenge is not one this server issued",
        ),
        ({"challenge": "made-up", "nonce": "1"}, "The challenge is not one this server issued"),
    ]
    for payload, error in cases:
        response = await client.post("/api/v1/shield/pass", json=payload)
        assert response.status_code == 422
        assert response.json() == {"error": error}
    for bad in ({"challenge": challenge}, {"challenge": challenge, "nonce": "x" * 65}, {}):
        assert (await client.post("/api/v1/shield/pass", json=bad)).status_code == 422
    # A solution from another network is refused: challenges are bound to the prefix.
    async with client_from(app, "203.0.113.50") as elsewhere:
        response = await elsewhere.post(
            "/api/v1/shield/pass", json={"challenge": challenge, "nonce": nonce}
        )
    assert response.json() == {"error": "The challenge was issued to another network"}

    under_attack(app)
    forged = await client.get(PUBLIC, headers={"X-Townsquare-Pass": "p1.x.9999999999.30.y.z"})
    assert forged.status_code == 429


async def test_a_pass_is_bound_to_its_network(app: FastAPI) -> None:
    under_attack(app)
    async with client_from(app, "198.51.100.7") as here:
        token = str((await earn_pass(here))["pass"])
    async with client_from(app, "198.51.100.200") as neighbour:
        neighbour_response = await neighbour.get(PUBLIC, headers={"X-Townsquare-Pass": token})
    async with client_from(app, "192.0.2.1") as stranger:
        stranger_response = await stranger.get(PUBLIC, headers={"X-Townsquare-Pass": token})
    assert neighbour_response.status_code == 404  # same /24
    assert stranger_response.status_code == 429


async def test_one_pass_buys_a_limited_number_of_requests(shielded: AppFactory) -> None:
    app = await shielded(shield_pass_rate_limit="3/minute")
    under_attack(app)
    async with client_from(app) as http:
        token = str((await earn_pass(http))["pass"])
        http.cookies.clear()
        headers = {"X-Townsquare-Pass": token}
        statuses = [(await http.get(PUBLIC, headers=headers)).status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        spent = await http.get(PUBLIC, headers=headers)
        assert spent.json()["error"] == "This pass has been used up"
        assert "challenge" in spent.json()
    assert shield_of(app).metrics.pass_limited == 2


async def test_logged_in_users_never_need_a_pass(app: FastAPI, alice: Person, bob: Person) -> None:
    under_attack(app)
    # Remembered by the authentication layer, or not yet seen by this worker: both get in.
    standing.remember(digest(alice.token), verified=False)
    for person in (alice, bob):
        response = await person.client.get("/api/v1/accounts/verify_credentials")
        assert response.status_code == 200, response.text
    # A token the authentication layer turned down is no better than none.
    standing.reject(digest("stolen-or-made-up"))
    async with client_from(app, headers={"Authorization": "Bearer stolen-or-made-up"}) as http:
        assert (await http.get(PUBLIC)).status_code == 429


async def test_apps_can_still_sign_users_in_during_an_attack(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    under_attack(app)
    # Served (whatever the answer), not challenged.
    assert (await client.get("/api/v2/instance")).status_code != 429
    assert (await client.post("/api/v1/apps", json={})).status_code == 422
    preflight = await client.options(
        PUBLIC,
        headers={"Origin": "https://elk.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    refused = await client.get(PUBLIC, headers={"Origin": "https://elk.example"})
    assert refused.status_code == 429
    assert refused.headers["Access-Control-Allow-Origin"] == "*"


async def test_the_browser_solver_is_served(client: httpx.AsyncClient) -> None:
    script = await client.get("/shield/pow-worker.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "crypto.subtle" in script.text


async def test_browsers_asking_for_a_page_get_one_that_solves_the_challenge(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    under_attack(app)
    page = await client.get("/@alice", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert "/shield/pow-worker.js" in page.text
    assert '"algorithm":"sha256"' in page.text
    assert "__CHALLENGE__" not in page.text
    # API clients asking for JSON still get JSON.
    api = await client.get(PUBLIC, headers={"Accept": "text/html"})
    assert api.headers["content-type"] == "application/json"


async def test_a_token_the_api_accepted_is_served_first_without_a_pass(
    app: FastAPI, alice: Person
) -> None:
    from townsquare.shield.standing import Standing, token_digest, tokens

    tokens.clear()
    under_attack(app)
    # The first request is let through to authentication; from then on the token is trusted.
    assert (await alice.client.get("/api/v1/accounts/verify_credentials")).status_code == 200
    assert tokens.get(token_digest(alice.token)) == Standing.GOOD
    forged = client_from(app, headers={"Authorization": "Bearer forged"})
    assert (await forged.get("/api/v1/accounts/verify_credentials")).status_code == 401
    assert tokens.get(token_digest("forged")) == Standing.INVALID
    # A token known to be invalid is no better than none: under attack it is challenged.
    again = await forged.get("/api/v1/accounts/verify_credentials")
    assert again.status_code == 429
    assert "challenge" in again.json()
