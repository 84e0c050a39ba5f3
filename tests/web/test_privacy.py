"""The web pages show only what the API would: private posts, messages and blocks hold."""

from __future__ import annotations

import re

from .conftest import Browser, BrowserFactory

JSON = {"Accept": "application/json"}


async def post(author: Browser, text: str, **fields: str) -> str:
    answer = await author.submit("/statuses", {"status": text, **fields}, headers=JSON)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


async def test_followers_only_post_is_hidden_from_others(browser: BrowserFactory) -> None:
    alice, mallory = await browser("alice"), await browser("mallory")
    anonymous = await browser()
    status_id = await post(alice, "for followers only", visibility="private")
    assert (await alice.http.get(f"/@alice/{status_id}")).status_code == 200
    for viewer in (mallory, anonymous):
        assert (await viewer.http.get(f"/@alice/{status_id}")).status_code == 404
        assert (await viewer.http.get(f"/web/statuses/{status_id}")).status_code == 404
        assert "for followers only" not in (await viewer.http.get("/@alice")).text
        assert "for followers only" not in (await viewer.http.get("/public")).text


async def test_direct_messages_reach_only_their_participants(browser: BrowserFactory) -> None:
    alice, bob, mallory = await browser("alice"), await browser("bob"), await browser("mallory")
    sent = await alice.submit("/messages", {"to": "bob", "status": "the secret plan"})
    assert sent.status_code == 303
    conversation = sent.headers["location"]
    assert "the secret plan" in (await bob.http.get(conversation)).text
    assert "the secret plan" in (await bob.http.get("/messages")).text
    assert (await mallory.http.get(conversation)).status_code == 404
    assert "the secret plan" not in (await mallory.http.get("/messages")).text
    status_id = re.findall(r'data-id="(\d+)"', (await bob.http.get(conversation)).text)[-1]
    assert (await mallory.http.get(f"/@alice/{status_id}")).status_code == 404
    found = await mallory.http.get("/search", params={"q": "secret plan"})
    assert "the secret plan" not in found.text
    # Mallory cannot slip into the conversation by replying to it.
    reply = await mallory.submit(
        "/messages", {"to": "alice", "in_reply_to_id": status_id, "status": "let me in"}
    )
    assert reply.status_code == 404
    assert "let me in" not in (await alice.http.get(conversation)).text


async def test_a_blocked_viewer_sees_nothing_of_the_blocker(browser: BrowserFactory) -> None:
    alice, mallory = await browser("alice"), await browser("mallory")
    status_id = await post(alice, "not for mallory")
    profile = await alice.http.get("/@mallory")
    mallory_id = re.search(r'action="/accounts/(\d+)/follow"', profile.text)
    assert mallory_id
    blocked = await alice.submit(f"/accounts/{mallory_id.group(1)}/block", {})
    assert blocked.status_code == 303
    assert (await mallory.http.get(f"/@alice/{status_id}")).status_code == 404
    assert "not for mallory" not in (await mallory.http.get("/@alice")).text
    assert "not for mallory" not in (await mallory.http.get("/public")).text
    alice_id = await alice.http.get("/@alice")
    assert "Edit profile" in alice_id.text
    liked = await mallory.http.post(
        f"/statuses/{status_id}/favourite",
        data={"csrf_token": await mallory.csrf()},
        headers=JSON,
    )
    assert liked.status_code == 404


async def test_only_the_author_edits_or_deletes(browser: BrowserFactory) -> None:
    alice, mallory = await browser("alice"), await browser("mallory")
    status_id = await post(alice, "mine to change")
    assert (await mallory.http.get(f"/statuses/{status_id}/edit")).status_code == 404
    deleted = await mallory.submit(f"/statuses/{status_id}/delete", {}, headers=JSON)
    assert deleted.status_code == 404
    assert (await mallory.http.get(f"/@alice/{status_id}")).status_code == 200


async def test_moderation_pages_need_a_moderator(browser: BrowserFactory) -> None:
    mallory = await browser("mallory")
    assert (await mallory.http.get("/moderation")).status_code == 403
    anonymous = await browser()
    assert (await anonymous.http.get("/moderation")).status_code == 303
