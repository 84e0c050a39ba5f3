"""The home page assembled from templates says exactly what the entity functions say.

Every kind of status a page shows (plain, reblogged, replied to, with a content warning, tags
and mentions, a poll, a quote) and every mark of the reader, compared byte for byte with
``render_statuses`` over ``home_timeline`` (the ORM's way), on the first read (templates
made) and on the next ones (templates used), after changes too.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI

from tests.conftest import Person, PersonFactory
from tests.timelines.conftest import Relate
from townsquare.api.pagination import Page
from townsquare.jobs.runner import run_pending_jobs
from townsquare.state import state_of
from townsquare.statuses.cache import entity_cache
from townsquare.statuses.entities import render_statuses
from townsquare.statuses.rendered import fill, template_of
from townsquare.timelines.home import BIG_AUTHORS_SECONDS, BigAuthors, home_timeline


async def _expected(app: FastAPI, reader: Person, page: Page) -> bytes:
    state = state_of(app)
    async with state.db.read() as session:
        statuses = await home_timeline(
            session, reader.account.id, page, pull_threshold=state.settings.fanout_pull_threshold
        )
        rendered = await render_statuses(session, state, reader.account.id, statuses)
    return orjson.dumps(rendered, option=orjson.OPT_NON_STR_KEYS)


async def _same_as_the_entities(app: FastAPI, reader: Person, query: str = "") -> bytes:
    response = await reader.client.get(f"/api/v1/timelines/home{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    limit = 20
    if "limit=" in query:
        limit = int(query.split("limit=")[1].split("&")[0])
    assert response.content == await _expected(app, reader, Page(limit=limit))
    return response.content


async def _status(person: Person, **params: Any) -> str:
    response = await person.client.post("/api/v1/statuses", json=params)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def test_every_kind_of_status_renders_as_the_entity_functions_do(
    app: FastAPI,
    alice: Person,
    bob: Person,
    carol: Person,
    make_person: PersonFactory,
    follow: Relate,
) -> None:
    dave = await make_person("dave")
    await follow(bob, alice)
    await follow(bob, carol)
    unseen = await _status(dave, status="only reaches bob through carol's reblog")
    plain = await _status(alice, status="plain words")
    await _status(alice, status="careful", spoiler_text="a warning", sensitive=True)
    tagged = await _status(alice, status=f"hello @carol #topic {plain}", language="en")
    await _status(carol, status="a reply", in_reply_to_id=tagged)
    await _status(alice, status="Tea?", poll={"options": ["tea", "coffee"], "expires_in": 600})
    await _status(carol, status="quoting", quoted_status_id=plain)
    own = await _status(bob, status="bob's own")
    for who, action, target in (
        (carol, "reblog", plain),
        (carol, "reblog", unseen),
        (bob, "favourite", unseen),
        (bob, "favourite", plain),
        (bob, "bookmark", tagged),
        (bob, "pin", own),
        (carol, "favourite", tagged),
    ):
        response = await who.client.post(f"/api/v1/statuses/{target}/{action}")
        assert response.status_code == 200, response.text
    await run_pending_jobs(state_of(app))

    first = await _same_as_the_entities(app, bob)
    # The reblog of a status already in the feed is left out of it.
    assert len(orjson.loads(first)) == 8
    assert b'"favourited":true' in first
    cache = entity_cache(state_of(app))
    hits = cache.templates.hits
    assert await _same_as_the_entities(app, bob) == first
    assert cache.templates.hits > hits
    await _same_as_the_entities(app, bob, "?limit=3")

    # Changes after the templates were made: marks, counters, an edit, a profile.
    await bob.client.post(f"/api/v1/statuses/{plain}/unfavourite")
    await bob.client.post(f"/api/v1/statuses/{tagged}/favourite")
    await alice.client.put(f"/api/v1/statuses/{plain}", json={"status": "plain, edited"})
    await alice.client.patch("/api/v1/accounts/update_credentials", data={"display_name": "Al"})
    await run_pending_jobs(state_of(app))
    changed = await _same_as_the_entities(app, bob)
    assert b"plain, edited" in changed and b'"display_name":"Al"' in changed


def test_a_template_filled_without_marks_is_the_entity() -> None:
    account = {"id": "7", "username": "alice"}
    original = {"id": "1", "favourited": False, "reblogged": False, "muted": False}
    original |= {"bookmarked": False, "pinned": False, "reblog": None, "account": account}
    reblog = {"id": "2", "content": "", "favourited": False, "reblogged": False}
    reblog |= {"muted": False, "bookmarked": False, "pinned": False, "reblog": original}
    reblog |= {"account": account, "tags": [{"name": "x"}]}

    class NoMarks:
        favourited: set[int] = set()
        reblogged: set[int] = set()
        bookmarked: set[int] = set()
        pinned: set[int] = set()

    out: list[bytes] = []
    fill(template_of(reblog), NoMarks(), {7: orjson.dumps(account)}, out)
    assert b"".join(out) == orjson.dumps(reblog)


async def test_big_authors_are_read_again_after_a_write_or_the_bound() -> None:
    reads: list[int] = []

    async def rows(_statement: Any, values: dict[str, Any]) -> list[Any]:
        reads.append(values["pull_threshold"])
        return [(len(reads),)]

    big = BigAuthors()
    now = 100.0
    big.clock = lambda: now
    assert await big.ids(rows, 0, 5) == [1]
    assert await big.ids(rows, 0, 5) == [1]  # kept
    assert await big.ids(rows, 1, 5) == [2]  # this worker wrote to accounts
    now += BIG_AUTHORS_SECONDS
    assert await big.ids(rows, 1, 5) == [3]  # another worker's writes: within the bound
    assert reads == [5, 5, 5]
