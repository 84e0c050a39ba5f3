"""Mastodon.py, unchanged, posting and handling statuses (in process, over a requests bridge)."""

from __future__ import annotations

import asyncio

import requests
from fastapi import FastAPI
from mastodon import Mastodon

from tests.conftest import Person
from tests.timelines.test_mastodon_py import AsgiBridge, in_thread


def _client(app: FastAPI, person: Person) -> Mastodon:
    session = requests.Session()
    session.mount("http://testserver", AsgiBridge(app, asyncio.get_running_loop()))
    return Mastodon(
        access_token=person.token,
        api_base_url="http://testserver",
        session=session,
        version_check_mode="none",
    )


async def test_mastodon_py_handles_statuses(app: FastAPI, alice: Person, bob: Person) -> None:
    a, b = _client(app, alice), _client(app, bob)
    posted = await in_thread(
        a.status_post, "Lunch? @bob #food", idempotency_key="lunch-1", visibility="unlisted"
    )
    again = await in_thread(a.status_post, "Lunch? @bob #food", idempotency_key="lunch-1")
    assert again.id == posted.id
    assert posted.visibility == "unlisted"
    assert posted.tags[0].name == "food"

    reply = await in_thread(b.status_post, "@alice yes", in_reply_to_id=posted.id)
    context = await in_thread(a.status_context, posted.id)
    assert [s.id for s in context.descendants] == [reply.id]

    await in_thread(b.status_favourite, posted.id)
    await in_thread(b.status_bookmark, posted.id)
    boosted = await in_thread(b.status_reblog, posted.id)
    assert boosted.reblog.id == posted.id
    seen = await in_thread(a.status, posted.id)
    assert (seen.favourites_count, seen.reblogs_count, seen.replies_count) == (1, 1, 1)
    assert [s.id for s in await in_thread(b.favourites)] == [posted.id]
    assert [s.id for s in await in_thread(b.bookmarks)] == [posted.id]
    assert [int(acct.id) for acct in await in_thread(a.status_favourited_by, posted.id)] == [
        bob.account.id
    ]

    poll = await in_thread(a.make_poll, ["yes", "no"], expires_in=600)
    question = await in_thread(a.status_post, "Pizza?", poll=poll)
    voted = await in_thread(b.poll_vote, question.poll.id, [0])
    assert voted.own_votes == [0]

    await in_thread(a.status_update, posted.id, "Lunch at noon? @bob #food")
    history = await in_thread(a.status_history, posted.id)
    assert len(history) == 2
    mine = await in_thread(a.account_statuses, alice.account.id)
    assert [s.id for s in mine] == [question.id, posted.id]
    deleted = await in_thread(a.status_delete, question.id)
    assert deleted.text == "Pizza?"
