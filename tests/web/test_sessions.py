"""Logging in and out through the web pages: cookies, CSRF, password changes."""

from __future__ import annotations

from .conftest import PASSWORD, BrowserFactory


async def test_sign_up_sets_a_protected_session_cookie(browser: BrowserFactory) -> None:
    anonymous = await browser()
    token = await anonymous.csrf()
    answer = await anonymous.http.post(
        "/auth/sign_up",
        data={
            "csrf_token": token,
            "username": "dana",
            "email": "dana@example.test",
            "password": PASSWORD,
            "agreement": "on",
        },
    )
    assert answer.status_code == 303
    cookies = [c.lower() for c in answer.headers.get_list("set-cookie")]
    session = next(c for c in cookies if c.startswith("townsquare_session="))
    assert "httponly" in session and "samesite=lax" in session
    assert "secure" not in session  # served over plain http here
    home = await anonymous.http.get("/")
    assert "Log out" in home.text and "@dana" in home.text


async def test_cookies_are_secure_over_https(browser: BrowserFactory) -> None:
    anonymous = await browser()
    anonymous.http.base_url = "https://testserver"  # type: ignore[assignment]
    page = await anonymous.http.get("/auth/sign_in")
    cookie = page.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie


async def test_forms_without_the_csrf_token_are_refused(browser: BrowserFactory) -> None:
    alice = await browser("alice")
    for path, data in [
        ("/statuses", {"status": "forged"}),
        ("/auth/sign_out", {}),
        ("/settings/password", {"current_password": PASSWORD, "new_password": "x" * 12}),
    ]:
        refused = await alice.http.post(path, data={**data, "csrf_token": "wrong"})
        assert refused.status_code == 403, path
        missing = await alice.http.post(path, data=data, headers={"Accept": "application/json"})
        assert missing.status_code == 403
        assert "error" in missing.json()
    mine = await alice.http.get("/@alice")
    assert "forged" not in mine.text


async def test_a_cross_site_origin_is_refused_even_with_the_token(browser: BrowserFactory) -> None:
    alice = await browser("alice")
    token = await alice.csrf()
    answer = await alice.http.post(
        "/statuses",
        data={"csrf_token": token, "status": "from elsewhere"},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403


async def test_wrong_password_and_log_out(browser: BrowserFactory) -> None:
    await browser("alice")
    other = await browser()
    wrong = await other.submit("/auth/sign_in", {"login": "alice", "password": "nope nope"})
    assert wrong.status_code == 401
    assert "Wrong username" in wrong.text
    right = await other.submit("/auth/sign_in", {"login": "alice", "password": PASSWORD})
    assert right.status_code == 303
    assert (await other.http.get("/notifications")).status_code == 200
    out = await other.submit("/auth/sign_out", {})
    assert out.status_code == 303
    assert (await other.http.get("/notifications")).status_code == 303  # to the login page


async def test_changing_the_password_logs_out_other_browsers(browser: BrowserFactory) -> None:
    phone = await browser("alice")
    laptop = await browser()
    await laptop.submit("/auth/sign_in", {"login": "alice", "password": PASSWORD})
    new = "another good password"
    changed = await phone.submit(
        "/settings/password",
        {"current_password": PASSWORD, "new_password": new, "confirm_password": new},
    )
    assert changed.status_code == 200 and "Password changed" in changed.text
    assert (await phone.http.get("/notifications")).status_code == 200
    assert (await laptop.http.get("/notifications")).status_code == 303


async def test_sign_up_problems_are_shown_per_field(browser: BrowserFactory) -> None:
    anonymous = await browser()
    answer = await anonymous.submit(
        "/auth/sign_up",
        {"username": "bad name!", "email": "nope", "password": "short", "agreement": "on"},
    )
    assert answer.status_code == 422
    assert 'id="username-error"' in answer.text and 'id="password-error"' in answer.text


async def test_streams_refuse_the_session_cookie_from_another_site(
    browser: BrowserFactory,
) -> None:
    alice = await browser("alice")
    foreign = await alice.http.get(
        "/api/v1/streaming/user", headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 401
    anonymous = await browser()
    assert (await anonymous.http.get("/api/v1/streaming/user")).status_code == 401
    anonymous.http.cookies.set("townsquare_session", "not-a-session")
    assert (await anonymous.http.get("/api/v1/streaming/user")).status_code == 401


async def test_the_api_does_not_accept_the_session_cookie(browser: BrowserFactory) -> None:
    alice = await browser("alice")
    answer = await alice.http.get("/api/v1/accounts/verify_credentials")
    assert answer.status_code == 401
    posted = await alice.http.post("/api/v1/statuses", data={"status": "via cookie"})
    assert posted.status_code == 401


async def test_login_only_sends_people_back_to_this_site(browser: BrowserFactory) -> None:
    await browser("alice")
    for target, expected in [
        ("/notifications", "/notifications"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
    ]:
        other = await browser()
        token = await other.csrf()
        answer = await other.http.post(
            "/auth/sign_in",
            data={"csrf_token": token, "login": "alice", "password": PASSWORD, "next": target},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == expected, target
