"""The visibility rules themselves, checked on rows written straight to the database."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import Person
from townsquare.db.base import utcnow
from townsquare.graph.models import Block, Follow, Mute
from townsquare.ids import new_id
from townsquare.privacy import can_view_status, hidden_account_ids, not_hidden, visible_to
from townsquare.state import state_of
from townsquare.statuses.models import Mention, Status


async def _write_statuses(app: FastAPI, author: Person, mentioned: Person) -> dict[str, int]:
    ids = {}
    async with state_of(app).db.write() as session:
        for visibility in ("public", "unlisted", "private", "direct"):
            status = Status(
                id=new_id(), account_id=author.account.id, visibility=visibility, text=visibility
            )
            session.add(status)
            await session.flush()
            ids[visibility] = status.id
        session.add(Mention(status_id=ids["direct"], account_id=mentioned.account.id))
    return ids


async def _visible(app: FastAPI, viewer: Person | None) -> set[str]:
    viewer_id = viewer.account.id if viewer else None
    async with state_of(app).db.read() as session:
        hidden = await hidden_account_ids(session, viewer_id)
        rows = await session.scalars(
            select(Status).where(visible_to(viewer_id), not_hidden(hidden))
        )
        listed = {status.text for status in rows}
        # The single-status check must agree with the list clause.
        for status in await session.scalars(select(Status)):
            assert (status.text in listed) == await can_view_status(session, viewer_id, status)
    return listed


async def test_visibility_by_relationship(
    app: FastAPI, alice: Person, bob: Person, carol: Person
) -> None:
    await _write_statuses(app, alice, bob)
    assert await _visible(app, None) == {"public", "unlisted"}
    assert await _visible(app, alice) == {"public", "unlisted", "private", "direct"}
    assert await _visible(app, bob) == {"public", "unlisted", "direct"}
    assert await _visible(app, carol) == {"public", "unlisted"}

    async with state_of(app).db.write() as session:
        session.add(
            Follow(id=new_id(), account_id=carol.account.id, target_account_id=alice.account.id)
        )
    assert await _visible(app, carol) == {"public", "unlisted", "private"}


async def test_blocks_hide_everything_both_ways(app: FastAPI, alice: Person, bob: Person) -> None:
    await _write_statuses(app, alice, bob)
    async with state_of(app).db.write() as session:
        session.add(
            Block(id=new_id(), account_id=alice.account.id, target_account_id=bob.account.id)
        )
    assert await _visible(app, bob) == set()
    async with state_of(app).db.read() as session:
        assert bob.account.id in await hidden_account_ids(session, alice.account.id)
        assert alice.account.id in await hidden_account_ids(session, bob.account.id)


async def test_mutes_hide_from_lists_only_for_the_muter(
    app: FastAPI, alice: Person, bob: Person, carol: Person
) -> None:
    async with state_of(app).db.write() as session:
        session.add(
            Mute(id=new_id(), account_id=bob.account.id, target_account_id=alice.account.id)
        )
    async with state_of(app).db.read() as session:
        assert alice.account.id in await hidden_account_ids(session, bob.account.id)
        assert alice.account.id not in await hidden_account_ids(session, carol.account.id)
        assert bob.account.id not in await hidden_account_ids(session, alice.account.id)


async def test_suspended_authors_are_invisible(app: FastAPI, alice: Person, bob: Person) -> None:
    await _write_statuses(app, alice, bob)
    async with state_of(app).db.write() as session:
        account = await session.get(type(alice.account), alice.account.id)
        assert account is not None
        account.suspended_at = utcnow()
    assert await _visible(app, bob) == set()
    assert await _visible(app, None) == set()
