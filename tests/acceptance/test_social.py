"""The social core through Mastodon.py: posting, following, timelines, threads, interactions."""

from __future__ import annotations

import pytest

from .conftest import Instance, Register, eventually

pytestmark = pytest.mark.acceptance


def ids(statuses: list) -> list:  # type: ignore[type-arg]
    return [status.id for status in statuses]


def test_post_follow_and_read_home_public_and_hashtag_timelines(
    instance: Instance, register: Register
) -> None:
    ann, ben = register("ann"), register("ben")
    ann_account = ann.account_verify_credentials()
    relationship = ben.account_follow(ann_account.id)
    assert relationship.following is True

    tag = f"townsquare{ann_account.id}"[-20:]
    status = ann.status_post(f"Hello from the square #{tag}")
    assert status.account.id == ann_account.id
    assert f"#{tag}" in status.content or tag in status.content
    assert status.visibility == "public"

    eventually(lambda: status.id in ids(ben.timeline_home()))
    assert status.id in ids(ben.timeline_public())
    tagged = eventually(lambda: ben.timeline_hashtag(tag))
    assert ids(tagged) == [status.id]
    assert status.id in ids(ann.account_statuses(ann_account.id))


def test_reply_and_context(instance: Instance, register: Register) -> None:
    cat, dan = register("cat"), register("dan")
    root = cat.status_post("Where is the best coffee?")
    reply = dan.status_post("At the market, on Thursdays.", in_reply_to_id=root.id)
    assert reply.in_reply_to_id == root.id
    context = cat.status_context(root.id)
    assert ids(context.descendants) == [reply.id]
    assert ids(dan.status_context(reply.id).ancestors) == [root.id]
    assert cat.status(root.id).replies_count == 1


def test_favourite_reblog_bookmark_and_notifications(
    instance: Instance, register: Register
) -> None:
    eve, fay = register("eve"), register("fay")
    fay_id = fay.account_verify_credentials().id
    post = eve.status_post("Library hours change next week.")

    assert fay.status_favourite(post.id).favourited is True
    reblog = fay.status_reblog(post.id)
    assert reblog.reblog.id == post.id
    assert fay.status_bookmark(post.id).bookmarked is True
    assert post.id in ids(fay.bookmarks())
    assert post.id in ids(fay.favourites())
    seen = eve.status(post.id)
    assert (seen.favourites_count, seen.reblogs_count) == (1, 1)

    fay.account_follow(eve.account_verify_credentials().id)

    def notification_types() -> set[str]:
        return {n.type for n in eve.notifications() if n.account.id == fay_id}

    assert eventually(lambda: {"favourite", "reblog", "follow"} <= notification_types())

    fay.status_unfavourite(post.id)
    fay.status_unbookmark(post.id)
    assert post.id not in ids(fay.bookmarks())
    assert eve.status(post.id).favourites_count == 0


def test_search_finds_accounts_hashtags_and_statuses(
    instance: Instance, register: Register
) -> None:
    gus = register("gus")
    me = gus.account_verify_credentials()
    word = f"zebracrossing{me.id}"[-24:]
    post = gus.status_post(f"A new {word} opens near the river #{word}")

    accounts = gus.search_v2(me.username, result_type="accounts").accounts
    assert me.id in [account.id for account in accounts]
    found = eventually(lambda: gus.search_v2(word, result_type="statuses").statuses)
    assert post.id in ids(found)
    hashtags = gus.search_v2(word, result_type="hashtags").hashtags
    assert word.lower() in [tag.name.lower() for tag in hashtags]
