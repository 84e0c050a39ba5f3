"""Posting statuses: what is stored, what is refused, and retries that must not duplicate."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from sqlalchemy import func, select

from tests.conftest import Person
from townsquare.accounts.models import Account
from townsquare.config import Settings
from townsquare.jobs.models import Job
from townsquare.jobs.runner import run_pending_jobs
from townsquare.state import state_of
from townsquare.statuses.cache import entity_cache
from townsquare.statuses.create import PlainDraft, plain_draft
from townsquare.statuses.models import Status
from townsquare.statuses.schemas import StatusDraft


async def _count_statuses(app: FastAPI) -> int:
    async with state_of(app).db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Status)) or 0)


async def test_post_and_read_back(alice: Person, bob: Person) -> None:
    posted = await alice.client.post(
        "/api/v1/statuses",
        data={"status": "Hello @bob #Town", "visibility": "unlisted", "spoiler_text": "cw"},
    )
    assert posted.status_code == 200, posted.text
    body = posted.json()
    assert body["visibility"] == "unlisted"
    assert body["sensitive"] is True
    assert body["spoiler_text"] == "cw"
    assert body["mentions"] == [
        {"id": bob.id, "username": "bob", "url": "http://testserver/@bob", "acct": "bob"}
    ]
    assert body["tags"] == [{"name": "town", "url": "http://testserver/tags/town"}]
    assert body["account"]["id"] == alice.id
    assert body["created_at"].endswith("Z")

    shown = await bob.client.get(f"/api/v1/statuses/{body['id']}")
    assert shown.status_code == 200
    assert shown.json()["content"] == body["content"]
    me = await alice.client.get("/api/v1/accounts/verify_credentials")
    if me.status_code == 200:
        assert me.json()["statuses_count"] == 1


async def test_bad_input_writes_nothing(app: FastAPI, alice: Person) -> None:
    bad = [
        {"status": ""},
        {"status": "   "},
        {"status": "x" * 501},
        {"status": "hi", "visibility": "everyone"},
        {"status": "hi", "in_reply_to_id": "999999"},
        {"status": "hi", "in_reply_to_id": "not-an-id"},
        {"status": "hi", "media_ids": ["123"]},
        {"status": "hi", "poll": {"options": ["only one"], "expires_in": 600}},
        {"status": "hi", "poll": {"options": ["a", "b"], "expires_in": 5}},
        {"status": "hi", "poll": {"options": ["a", "b", "c", "d", "e"], "expires_in": 600}},
        {"status": "hi", "scheduled_at": "2099-01-01T00:00:00Z"},
        {"status": "hi", "sensitive": "maybe"},
    ]
    for params in bad:
        response = await alice.client.post("/api/v1/statuses", json=params)
        assert 400 <= response.status_code < 500, (params, response.text)
        assert "error" in response.json()
    assert await _count_statuses(app) == 0


async def test_links_count_as_23_characters(alice: Person) -> None:
    long_link = "https://example.com/" + "a" * 600
    response = await alice.client.post(
        "/api/v1/statuses", json={"status": "x" * 470 + " " + long_link}
    )
    assert response.status_code == 200, response.text


async def test_idempotency_key_returns_the_first_status(app: FastAPI, alice: Person) -> None:
    headers = {"Idempotency-Key": "retry-1"}
    first = await alice.client.post("/api/v1/statuses", json={"status": "once"}, headers=headers)
    second = await alice.client.post("/api/v1/statuses", json={"status": "once"}, headers=headers)
    assert first.json()["id"] == second.json()["id"]
    assert await _count_statuses(app) == 1


async def test_concurrent_retries_create_one_status(app: FastAPI, alice: Person) -> None:
    headers = {"Idempotency-Key": "tap-tap"}
    responses = await asyncio.gather(
        *(
            alice.client.post("/api/v1/statuses", json={"status": "double"}, headers=headers)
            for _ in range(5)
        )
    )
    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _count_statuses(app) == 1


async def test_reply_sets_thread_and_counts(alice: Person, bob: Person) -> None:
    parent = (await alice.client.post("/api/v1/statuses", json={"status": "root"})).json()
    reply = await bob.client.post(
        "/api/v1/statuses", json={"status": "answer", "in_reply_to_id": parent["id"]}
    )
    assert reply.status_code == 200
    assert reply.json()["in_reply_to_id"] == parent["id"]
    assert reply.json()["in_reply_to_account_id"] == alice.id
    again = (await alice.client.get(f"/api/v1/statuses/{parent['id']}")).json()
    assert again["replies_count"] == 1


async def test_malformed_and_unknown_ids_are_not_found(alice: Person) -> None:
    for bad_id in ("abc", "0", "-5", "99999999999999999999999", "12345"):
        response = await alice.client.get(f"/api/v1/statuses/{bad_id}")
        assert response.status_code == 404, bad_id


async def test_the_answer_is_the_entity_read_back(app: FastAPI, alice: Person, bob: Person) -> None:
    """The answer to a post is made from what it wrote; it must equal the status read back."""
    root = (await bob.client.post("/api/v1/statuses", json={"status": "root"})).json()
    drafts = [
        {"status": "plain"},
        {"status": "to @bob and @nobody", "visibility": "private"},
        {"status": "cw", "spoiler_text": "careful", "language": "fr"},
        {"status": "a reply", "in_reply_to_id": root["id"], "sensitive": True},
        {"status": "just to @bob", "visibility": "direct"},
        {"status": "with #tags #Town"},
        {"status": "quoting", "quote_id": root["id"]},
    ]
    for draft in drafts:
        posted = await alice.client.post("/api/v1/statuses", json=draft)
        assert posted.status_code == 200, posted.text
        # The answer's parts went into the entity cache: read back without them.
        entity_cache(state_of(app)).statuses.clear()
        shown = await alice.client.get(f"/api/v1/statuses/{posted.json()['id']}")
        assert shown.status_code == 200
        assert posted.json() == shown.json(), draft


def test_only_drafts_that_write_nothing_but_the_status_are_plain() -> None:
    settings = Settings(domain="testserver", secret_key="test-secret")
    author = Account(
        id=1,
        username="alice",
        default_visibility="public",
        default_sensitive=False,
        default_language=None,
    )

    def plain(**fields: object) -> PlainDraft | None:
        return plain_draft(settings, author, StatusDraft.model_validate(fields))

    found = plain(status="words and https://example.com/a link", spoiler_text=" cw ")
    assert found is not None
    assert (found.visibility, found.sensitive, found.spoiler_text) == ("public", True, "cw")
    assert 'href="https://example.com/a"' in found.html
    assert plain(status="private words", visibility="private") is not None
    assert plain(status="to @bob") is None
    assert plain(status="to @bob@elsewhere.example") is None
    assert plain(status="about #town") is None
    assert plain(status="direct words", visibility="direct") is None
    assert plain(status="with media", media_ids=["5"]) is None
    assert plain(status="a poll", poll={"options": ["a", "b"], "expires_in": 600}) is None
    assert plain(status="a reply", in_reply_to_id="5") is None
    assert plain(status="a quote", quote_id="5") is None
    assert plain(status="later", scheduled_at="2099-01-01T00:00:00Z") is None
    author.default_visibility = "direct"
    assert plain(status="direct by default") is None


async def _row(app: FastAPI, status_id: str) -> dict[str, object]:
    async with state_of(app).db.read() as session:
        status = await session.get(Status, int(status_id))
        assert status is not None
        return {
            column.key: getattr(status, column.key)
            for column in Status.__mapper__.columns
            if column.key not in ("id", "thread_id", "created_at")
        }


async def test_a_plain_post_writes_what_the_full_path_writes(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    """Plain posts take a path of their own (``plain_draft``); an Idempotency-Key sends the
    same draft through the general one. Both must answer and write the same."""
    state = state_of(app)
    assert (await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")).status_code == 200
    draft = {
        "status": "Radishes\n\nand https://example.com/radishes",
        "spoiler_text": "veg",
        "language": "de",
        "visibility": "unlisted",
    }
    lean = await alice.client.post("/api/v1/statuses", json=draft)
    full = await alice.client.post(
        "/api/v1/statuses", json=draft, headers={"Idempotency-Key": "full-path"}
    )
    assert lean.status_code == full.status_code == 200, (lean.text, full.text)
    differ = ("id", "uri", "url", "created_at", "account")
    assert {k: v for k, v in lean.json().items() if k not in differ} == {
        k: v for k, v in full.json().items() if k not in differ
    }
    assert lean.json()["account"]["statuses_count"] == 1
    assert full.json()["account"]["statuses_count"] == 2
    lean_id, full_id = lean.json()["id"], full.json()["id"]
    assert await _row(app, lean_id) == await _row(app, full_id)
    async with state.db.read() as session:
        jobs = (await session.scalars(select(Job).where(Job.kind == "fanout"))).all()
        status = await session.get(Status, int(lean_id))
        assert status is not None and status.thread_id == status.id
    assert sorted(job.payload["status_id"] for job in jobs) == sorted([int(lean_id), int(full_id)])

    await run_pending_jobs(state)
    home = (await bob.client.get("/api/v1/timelines/home")).json()
    assert {entry["id"] for entry in home} == {lean_id, full_id}
    found = (await bob.client.get("/api/v2/search", params={"q": "radishes"})).json()
    assert {entry["id"] for entry in found["statuses"]} == {lean_id, full_id}
