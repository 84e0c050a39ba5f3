"""Mastodon's search operators narrow status results."""

from __future__ import annotations

import datetime as dt

from tests.conftest import Person
from tests.search.test_search import found_statuses, post
from townsquare.search.operators import parse_query


def test_parsing_keeps_unknown_operators_as_words() -> None:
    parsed = parse_query("from:@Bob has:media -is:reply before:2026-01-02 nope:x plain ***")
    assert parsed.from_username == "bob"
    assert parsed.has_media is True
    assert parsed.is_reply is False
    assert parsed.before == dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    assert parsed.words == ["nope:x", "plain"]
    assert parse_query("before:someday").words == ["before:someday"]


async def test_from_and_reply_operators(alice: Person, bob: Person) -> None:
    first = await post(alice, "leek soup recipe")
    reply = await post(bob, "leek soup is great", in_reply_to_id=first)
    bobs = await post(bob, "leek pie")
    assert await found_statuses(bob, "leek from:alice") == [first]
    assert await found_statuses(bob, "leek from:me") == [bobs, reply]
    assert await found_statuses(bob, "from:bob@testserver") == [bobs, reply]
    assert await found_statuses(bob, "leek from:nobody") == []
    assert await found_statuses(bob, "leek from:alice@elsewhere.example") == []
    assert await found_statuses(alice, "leek is:reply") == [reply]
    assert await found_statuses(alice, "leek -is:reply") == [bobs, first]


async def test_date_operators(alice: Person) -> None:
    status_id = await post(alice, "celery today")
    today = dt.datetime.now(dt.UTC).date()
    tomorrow = today + dt.timedelta(days=1)
    yesterday = today - dt.timedelta(days=1)
    assert await found_statuses(alice, f"celery before:{tomorrow}") == [status_id]
    assert await found_statuses(alice, f"celery before:{today}") == []
    assert await found_statuses(alice, f"celery after:{yesterday}") == [status_id]
    assert await found_statuses(alice, f"celery after:{today}") == []


async def test_operators_alone_still_respect_privacy(alice: Person, bob: Person) -> None:
    await post(alice, "only followers", visibility="private")
    assert await found_statuses(bob, "from:alice") == []
