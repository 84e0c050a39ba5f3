"""Under-attack mode in a real browser: anonymous visitors solve the proof of work without
noticing, can sign up, and are trusted once logged in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from .server import CHROMIUM, CHROMIUM_ARGS, running_server

pytestmark = pytest.mark.timeout(60)
# A loaded machine can take seconds to fan a post out; wait for it rather than fail.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(
        tmp_path_factory.mktemp("web-shield"), shield_attack_mode="on", shield_pow_difficulty="12"
    ) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_an_anonymous_visitor_passes_the_challenge_and_signs_up(
    chromium: Browser, base_url: str
) -> None:
    context = chromium.new_context(base_url=base_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    first = page.goto("/auth/sign_up")
    assert first is not None and first.status == 429  # the challenge page, solved by itself
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    assert any(c["name"] == "townsquare_pass" for c in context.cookies())

    # The pass is spent on the way; signing up still goes through, by script.
    context.clear_cookies(name="townsquare_pass")
    page.get_by_label("Username").fill("underattack")
    page.get_by_label("Email").fill("underattack@example.test")
    page.get_by_label("Password (at least 8 characters)").fill("a browser password")
    page.get_by_label("I agree to the server rules").check()
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()

    # Logged in, no pass is needed any more.
    context.clear_cookies(name="townsquare_pass")
    page.goto("/public")
    expect(page.get_by_role("heading", name="Explore")).to_be_visible()
    page.goto("/")
    page.get_by_label("Post text").fill("Still here during the flood")
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator("article.status", has_text="Still here during the flood")).to_be_visible()
    context.close()
