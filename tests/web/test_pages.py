"""Posting and acting through the web pages, and their answers to bad input."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from townsquare.config import Settings

from .conftest import BrowserFactory

JSON = {"Accept": "application/json"}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_landing_page_for_visitors_and_home_for_members(browser: BrowserFactory) -> None:
    anonymous = await browser()
    landing = await anonymous.http.get("/")
    assert landing.status_code == 200
    assert "Sign up" in landing.text and 'lang="en"' in landing.text
    alice = await browser("alice")
    home = await alice.http.get("/")
    assert 'id="compose"' in home.text and "<h1>Home</h1>" in home.text


async def test_post_with_an_image_reply_like_and_counts(browser: BrowserFactory) -> None:
    alice, bob = await browser("alice"), await browser("bob")
    token = await alice.csrf()
    posted = await alice.http.post(
        "/statuses",
        data={"csrf_token": token, "status": "a red square", "media_description[]": "Red square"},
        files={"media[]": ("red.png", png(), "image/png")},
        headers=JSON,
    )
    assert posted.status_code == 200, posted.text
    status_id = posted.json()["id"]
    assert 'alt="Red square"' in posted.json()["html"]
    reply = await bob.submit(
        "/statuses", {"status": "@alice nice", "in_reply_to_id": status_id}, headers=JSON
    )
    assert reply.status_code == 200
    liked = await bob.submit(f"/statuses/{status_id}/favourite", {}, headers=JSON)
    assert 'aria-pressed="true"' in liked.json()["html"]
    thread = await alice.http.get(f"/@alice/{status_id}")
    assert "@alice nice" in thread.text or "nice" in thread.text
    assert 'alt="Red square"' in thread.text
    assert '<span class="count">1</span>' in thread.text


async def test_too_long_posts_are_refused_clearly(browser: BrowserFactory) -> None:
    alice = await browser("alice")
    answer = await alice.submit("/statuses", {"status": "x" * 501}, headers=JSON)
    assert answer.status_code == 422
    assert "error" in answer.json()
    page = await alice.submit("/statuses", {"status": "x" * 501})
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
    assert "xxxxxxxxxx" not in (await alice.http.get("/@alice")).text


async def test_images_that_are_not_images_are_refused(browser: BrowserFactory) -> None:
    alice = await browser("alice")
    token = await alice.csrf()
    answer = await alice.http.post(
        "/statuses",
        data={"csrf_token": token, "status": "broken"},
        files={"media[]": ("x.png", b"not an image", "image/png")},
        headers=JSON,
    )
    assert answer.status_code == 422
    assert "broken" not in (await alice.http.get("/@alice")).text


async def test_unknown_pages_and_ids_are_404_pages(browser: BrowserFactory) -> None:
    anonymous = await browser()
    for path in ("/@nobody", "/@alice/notanumber", "/@nobody/123"):
        answer = await anonymous.http.get(path)
        assert answer.status_code in (404, 422), path
        assert "text/html" in answer.headers["content-type"]


async def test_follow_profile_and_search(browser: BrowserFactory) -> None:
    alice, bob = await browser("alice"), await browser("bob")
    profile = await alice.http.get("/@bob")
    assert ">Follow<" in profile.text
    bob_id = profile.text.split('action="/accounts/')[1].split("/")[0]
    await alice.submit(f"/accounts/{bob_id}/follow", {})
    assert ">Unfollow<" in (await alice.http.get("/@bob")).text
    found = await alice.http.get("/search", params={"q": "bo", "fragment": "1"})
    assert "@bob" in found.text
    await bob.submit("/settings/profile", {"display_name": "Bob B", "note": "hello"})
    assert "Bob B" in (await alice.http.get("/@bob")).text


async def test_anonymous_pages_without_forms_set_no_cookie(browser: BrowserFactory) -> None:
    alice = await browser("alice")
    await alice.submit("/statuses", {"status": "public words"}, headers=JSON)
    anonymous = await browser()
    profile = await anonymous.http.get("/@alice")
    assert "public words" in profile.text
    assert "set-cookie" not in profile.headers
    assert profile.headers["cache-control"].startswith("public")
    login = await anonymous.http.get("/auth/sign_in")
    assert "townsquare_web_csrf=" in login.headers["set-cookie"]
    assert "no-store" in login.headers["cache-control"]
    mine = await alice.http.get("/@alice")
    assert "no-store" in mine.headers["cache-control"]


async def test_default_avatar_and_header_are_served(browser: BrowserFactory) -> None:
    anonymous = await browser()
    for name in ("avatar.png", "header.png"):
        image = await anonymous.http.get(f"/static/{name}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert (await anonymous.http.get("/static/other.png")).status_code == 404


async def test_private_account_approves_follow_requests(browser: BrowserFactory) -> None:
    alice, bob = await browser("alice"), await browser("bob")
    await alice.submit("/settings/profile", {"display_name": "Alice", "locked": "on"})
    profile = await bob.http.get("/@alice")
    assert "Request to follow" in profile.text
    alice_id = profile.text.split('action="/accounts/')[1].split("/")[0]
    await bob.submit(f"/accounts/{alice_id}/follow", {})
    assert "Cancel follow request" in (await bob.http.get("/@alice")).text
    inbox = await alice.http.get("/notifications")
    assert "asked to follow you" in inbox.text
    bob_id = inbox.text.split('/authorize"')[0].rsplit("/accounts/", 1)[1]
    await alice.submit(f"/accounts/{bob_id}/authorize", {})
    assert ">Unfollow<" in (await bob.http.get("/@alice")).text


async def test_voting_in_a_poll(browser: BrowserFactory) -> None:
    alice, bob = await browser("alice"), await browser("bob")
    posted = await alice.submit(
        "/statuses",
        {
            "status": "Tea or coffee?",
            "poll[options][]": "Tea",
            "poll[expires_in]": "86400",
        },
        headers=JSON,
    )
    assert posted.status_code == 422  # one choice is not a poll
    token = await alice.csrf()
    posted = await alice.http.post(
        "/statuses",
        data={
            "csrf_token": token,
            "status": "Tea or coffee?",
            "poll[options][]": ["Tea", "Coffee", ""],
            "poll[expires_in]": "86400",
        },
        headers=JSON,
    )
    assert posted.status_code == 200, posted.text
    thread = await bob.http.get(f"/@alice/{posted.json()['id']}")
    poll_id = thread.text.split('action="/polls/')[1].split("/")[0]
    voted = await bob.submit(f"/polls/{poll_id}/vote", {"choices[]": "1"}, headers=JSON)
    assert voted.status_code == 200
    assert "(your vote)" in voted.json()["html"] and "100%" in voted.json()["html"]
    again = await bob.submit(f"/polls/{poll_id}/vote", {"choices[]": "0"}, headers=JSON)
    assert again.status_code == 422


async def test_editing_the_text_keeps_the_poll_and_its_votes(browser: BrowserFactory) -> None:
    alice, bob = await browser("alice"), await browser("bob")
    token = await alice.csrf()
    posted = await alice.http.post(
        "/statuses",
        data={
            "csrf_token": token,
            "status": "Pick one",
            "poll[options][]": ["Red", "Blue"],
            "poll[expires_in]": "3600",
        },
        headers=JSON,
    )
    status_id = posted.json()["id"]
    thread = await bob.http.get(f"/@alice/{status_id}")
    poll_id = thread.text.split('action="/polls/')[1].split("/")[0]
    await bob.submit(f"/polls/{poll_id}/vote", {"choices[]": "0"})
    edited = await alice.submit(f"/statuses/{status_id}/edit", {"status": "Pick one, please"})
    assert edited.status_code == 303
    page = await bob.http.get(f"/@alice/{status_id}")
    assert "Pick one, please" in page.text and "(edited)" in page.text
    assert "(your vote)" in page.text and "1 votes" in page.text


async def test_oversized_forms_are_refused_with_413(browser: BrowserFactory) -> None:
    alice = await browser("alice")
    token = await alice.csrf()
    answer = await alice.http.post(
        "/settings/password",
        data={"csrf_token": token, "current_password": "x" * 200_000},
        headers=JSON,
    )
    assert answer.status_code == 413
    assert "too large" in answer.json()["error"]


async def test_posting_too_often_is_refused_with_a_sentence(
    browser: BrowserFactory, settings: Settings
) -> None:
    settings.rate_limit_posting = "2/hour"
    alice = await browser("alice")
    for number in range(2):
        answer = await alice.submit("/statuses", {"status": f"post {number}"}, headers=JSON)
        assert answer.status_code == 200
    refused = await alice.submit("/statuses", {"status": "one too many"}, headers=JSON)
    assert refused.status_code == 429
    assert "try again in about" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) > 0
    assert "one too many" not in (await alice.http.get("/@alice")).text


async def test_quote_content_warning_and_repost(browser: BrowserFactory) -> None:
    alice, bob = await browser("alice"), await browser("bob")
    original = await alice.submit("/statuses", {"status": "original words"}, headers=JSON)
    original_id = original.json()["id"]
    compose = await bob.http.get("/", params={"quote": original_id})
    assert f'name="quoted_status_id" value="{original_id}"' in compose.text
    quoted = await bob.submit(
        "/statuses",
        {"status": "my take", "quoted_status_id": original_id, "spoiler_text": "opinions"},
        headers=JSON,
    )
    html = quoted.json()["html"]
    assert '<details class="cw">' in html and "opinions" in html
    assert '<blockquote class="quote">' in html and "original words" in html
    reposted = await bob.submit(f"/statuses/{original_id}/reblog", {}, headers=JSON)
    assert 'action-unreblog" aria-pressed="true"' in reposted.json()["html"]
    page = await alice.http.get(f"/@alice/{original_id}")
    assert 'Repost <span class="count">1</span>' in page.text
    profile = await alice.http.get("/@bob")
    assert "</a> reposted" in profile.text


async def test_profile_images_and_bio(browser: BrowserFactory, media_dir: Path) -> None:
    alice = await browser("alice")
    token = await alice.csrf()
    saved = await alice.http.post(
        "/settings/profile",
        data={"csrf_token": token, "display_name": "Alice A", "note": "Hello #world"},
        files={
            "avatar": ("me.png", png(), "image/png"),
            "header": ("top.png", png(), "image/png"),
        },
    )
    assert saved.status_code == 200 and "Profile saved" in saved.text
    profile = await alice.http.get("/@alice")
    assert "/media/" in profile.text.split('class="avatar large"')[1].split(">")[0]
    assert "/media/" in profile.text.split('class="header-image"')[1].split(">")[0]
    assert "Hello" in profile.text and "Alice A" in profile.text
    broken = await alice.http.post(
        "/settings/profile",
        data={"csrf_token": token, "display_name": "x"},
        files={"avatar": ("me.png", b"not an image", "image/png")},
    )
    assert broken.status_code == 422
    assert "Alice A" in (await alice.http.get("/@alice")).text
