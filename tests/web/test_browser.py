"""The web app in a real headless Chromium against a real ``townsquare serve``.

Two people sign up, one follows the other, who posts an image; the follower sees it arrive
live, replies, likes it and sends a direct message that the first one reads. A third person
who is blocked, or not in the conversation, is shown nothing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .server import CHROMIUM, CHROMIUM_ARGS, running_server

pytestmark = pytest.mark.timeout(60)
# A loaded machine can take seconds to fan a post out; wait for it rather than fail.
expect.set_options(timeout=20_000)
PASSWORD = "a browser password"
WAIT_MS = 20_000
_names = itertools.count(1)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("web-serve")) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def sign_up(browser: Browser, base_url: str, prefix: str) -> tuple[Page, str]:
    username = f"{prefix}{next(_names)}"
    page = browser.new_context(base_url=base_url).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto("/auth/sign_up")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.test")
    page.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
    page.get_by_label("I agree to the server rules").check()
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    return page, username


def wait_live(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-live", "open")


def png_file(tmp: Path) -> Path:
    path = tmp / "square.png"
    Image.new("RGB", (120, 80), (20, 120, 200)).save(path, "PNG")
    return path


def test_two_people_post_follow_reply_like_and_message(
    chromium: Browser, base_url: str, tmp_path: Path
) -> None:
    alice, alice_name = sign_up(chromium, base_url, "alice")
    bob, _bob_name = sign_up(chromium, base_url, "bob")

    bob.goto(f"/@{alice_name}")
    bob.get_by_role("button", name="Follow", exact=True).click()
    expect(bob.get_by_role("button", name="Unfollow")).to_be_visible()
    bob.goto("/")
    wait_live(bob)

    # Alice posts an image with alt text; the character count follows her typing.
    alice.get_by_label("Post text").fill("Blue square for everyone")
    expect(alice.locator("#compose-count")).to_have_text("476 characters left")
    alice.get_by_text("Images and poll").click()
    alice.get_by_label("Image 1", exact=True).set_input_files(png_file(tmp_path))
    expect(alice.locator("[data-attachment] img.preview").first).to_be_visible()
    alice.get_by_label("Alt text for image 1").fill("A blue square")
    alice.get_by_role("button", name="Post", exact=True).click()
    expect(alice.locator("article.status", has_text="Blue square for everyone")).to_be_visible()
    wait_live(alice)

    # It reaches Bob's open home page without a reload.
    post = bob.locator("article.status", has_text="Blue square for everyone")
    expect(post).to_be_visible()
    expect(post.get_by_role("img", name="A blue square")).to_be_visible()

    # Bob likes it: the button is pressed and the count goes up in place.
    post.get_by_role("button", name=re.compile("^Like")).click()
    liked = bob.locator("article.status", has_text="Blue square for everyone")
    expect(liked.get_by_role("button", name=re.compile("^Like"))).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(liked.get_by_role("button", name=re.compile("^Like"))).to_contain_text("1")
    # Alice's open page shows the unread badge without a reload.
    expect(alice.locator("#unread-badge")).to_be_visible()

    # Bob replies from the thread.
    liked.locator("a.time").click()
    bob.get_by_label("Post text").fill(f"@{alice_name} Lovely colour")
    bob.get_by_role("button", name="Reply", exact=True).click()
    expect(bob.locator("#replies article.status", has_text="Lovely colour")).to_be_visible()

    # Alice sees the reply in the thread and a notification.
    alice.goto("/notifications")
    expect(alice.locator(".notification", has_text="liked your post")).to_be_visible()
    expect(alice.locator(".notification", has_text="Lovely colour")).to_be_visible()

    # Bob writes to Alice privately; she reads it.
    bob.goto(f"/messages/new?to={alice_name}")
    bob.get_by_label("Message").fill("Just between us")
    bob.get_by_role("button", name="Send").click()
    expect(bob.locator("article.status", has_text="Just between us")).to_be_visible()
    conversation_url = bob.url
    alice.goto("/messages")
    alice.get_by_role("link", name=re.compile(_bob_name)).click()
    expect(alice.locator("article.status", has_text="Just between us")).to_be_visible()

    # Carol is in neither the conversation nor Alice's good books.
    carol, carol_name = sign_up(chromium, base_url, "carol")
    answer = carol.goto(conversation_url)
    assert answer is not None and answer.status == 404
    expect(carol.get_by_text("Just between us")).to_have_count(0)
    carol.goto("/messages")
    expect(carol.get_by_text("Just between us")).to_have_count(0)

    alice.goto(f"/@{carol_name}")
    alice.get_by_text("More", exact=True).click()
    alice.once("dialog", lambda dialog: dialog.accept())
    alice.get_by_role("button", name=f"Block @{carol_name}").click()
    expect(alice.get_by_role("button", name="Unblock")).to_be_visible()
    carol.goto(f"/@{alice_name}")
    expect(carol.get_by_text("Blue square for everyone")).to_have_count(0)
    thread_path = liked_path(bob, alice_name)
    answer = carol.goto(thread_path)
    assert answer is not None and answer.status == 404
    for page in (alice, bob, carol):
        page.context.close()


def liked_path(page: Page, author: str) -> str:
    page.goto(f"/@{author}")
    href = page.locator("article.status a.time").first.get_attribute("href")
    assert href is not None
    return href


def test_logging_in_and_out_in_the_browser(chromium: Browser, base_url: str) -> None:
    page, username = sign_up(chromium, base_url, "dana")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("navigation").get_by_role("link", name="Log in")).to_be_visible()
    page.goto("/auth/sign_in")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert").first).to_contain_text("Wrong username")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["townsquare_session"]["httpOnly"]
    assert cookies["townsquare_session"]["sameSite"] == "Lax"
    page.context.close()


SERIOUS = {"serious", "critical"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_main_pages_have_no_serious_accessibility_violations(
    chromium: Browser, base_url: str, scheme: str
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    page, username = sign_up(chromium, base_url, "erin")
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.get_by_label("Post text").fill("Checking #accessibility")
    page.get_by_role("button", name="Post", exact=True).click()
    post = page.locator("article.status", has_text="Checking")
    expect(post).to_be_visible()
    thread = post.locator("a.time").get_attribute("href")
    axe = Axe()
    found: dict[str, list[str]] = {}
    for path in ("/", "/public", f"/@{username}", str(thread), "/notifications", "/search?q=e"):
        page.goto(path)
        for violation in axe.run(page).response["violations"]:
            if violation["impact"] in SERIOUS:
                found.setdefault(path, []).append(violation["id"])
    anonymous = chromium.new_context(base_url=base_url).new_page()
    anonymous.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    for path in ("/", "/auth/sign_in", "/auth/sign_up"):
        anonymous.goto(path)
        for violation in axe.run(anonymous).response["violations"]:
            if violation["impact"] in SERIOUS:
                found.setdefault(f"anonymous {path}", []).append(violation["id"])
    page.context.close()
    anonymous.context.close()
    assert not found


def test_load_more_search_as_you_type_and_keyboard(chromium: Browser, base_url: str) -> None:
    page, username = sign_up(chromium, base_url, "frank")
    page.evaluate(
        """async () => {
            const csrf = document.querySelector('input[name="csrf_token"]').value;
            for (let i = 0; i < 25; i++) {
                const body = new FormData();
                body.append("status", `Numbered post ${i} #counting`);
                const answer = await fetch("/statuses", {method: "POST", body,
                    headers: {"Accept": "application/json", "X-CSRF-Token": csrf}});
                if (!answer.ok) throw new Error(await answer.text());
            }
        }"""
    )
    page.goto(f"/@{username}")
    posts = page.locator("#feed article.status")
    expect(posts).to_have_count(20)
    page.locator("a[data-load-more]").scroll_into_view_if_needed()
    expect(posts).to_have_count(25)
    expect(page.locator("a[data-load-more]")).to_have_count(0)

    # Liking with the keyboard alone.
    like = posts.first.get_by_role("button", name=re.compile("^Like"))
    like.focus()
    page.keyboard.press("Enter")
    expect(posts.first.get_by_role("button", name=re.compile("^Like"))).to_have_attribute(
        "aria-pressed", "true"
    )

    # Reading further down the home page, a new post waits behind a button.
    page.goto("/")
    wait_live(page)
    page.evaluate("window.scrollTo(0, 1500)")
    other_tab = page.context.new_page()
    other_tab.goto("/")
    other_tab.get_by_label("Post text").fill("Arrived while reading")
    other_tab.get_by_role("button", name="Post", exact=True).click()
    expect(other_tab.locator("article.status", has_text="Arrived while reading")).to_be_visible()
    other_tab.close()
    show = page.get_by_role("button", name="Show 1 new post")
    expect(show).to_be_visible()
    show.click()
    expect(page.locator("#feed article.status").first).to_contain_text("Arrived while reading")

    page.goto("/search")
    page.get_by_label("Search people, hashtags and posts").press_sequentially(username[:4])
    expect(
        page.locator("#search-results").get_by_role("link", name=re.compile(username))
    ).to_be_visible()
    page.context.close()


def test_pages_fit_a_360_px_phone(chromium: Browser, base_url: str) -> None:
    page, username = sign_up(chromium, base_url, "gina")
    page.set_viewport_size({"width": 360, "height": 740})
    page.get_by_label("Post text").fill(
        "A very long word: " + "x" * 120 + " https://example.org/" + "y" * 80
    )
    page.get_by_role("button", name="Post", exact=True).click()
    post = page.locator("article.status", has_text="A very long word")
    expect(post).to_be_visible()
    thread = str(post.locator("a.time").get_attribute("href"))
    for path in (
        "/",
        f"/@{username}",
        thread,
        "/search?q=g",
        "/settings/profile",
    ):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 360, f"{path} is {overflow} px wide"
    page.context.close()
