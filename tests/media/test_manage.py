"""Describing, deleting and attaching media: only its owner may, and only within the rules."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Person
from tests.media.conftest import image_bytes, upload
from townsquare.api.errors import ApiError
from townsquare.ids import new_id
from townsquare.media.service import attach_media, media_for_statuses
from townsquare.state import state_of
from townsquare.statuses.models import Status


async def uploaded(person: Person, **fields: str) -> str:
    response = await upload(person.client, image_bytes(), **fields)
    assert response.status_code == 200, response.text
    media_id: str = response.json()["id"]
    return media_id


async def new_status(app: FastAPI, person: Person) -> int:
    async with state_of(app).db.write() as session:
        status = Status(id=new_id(), account_id=person.account.id, text="with pictures")
        session.add(status)
    return status.id


async def test_owner_reads_and_describes_media(alice: Person) -> None:
    media_id = await uploaded(alice)
    shown = await alice.client.get(f"/api/v1/media/{media_id}")
    assert shown.status_code == 200
    assert shown.json()["description"] is None

    updated = await alice.client.put(
        f"/api/v1/media/{media_id}", json={"description": "A cat asleep", "focus": "-0.5,0.5"}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["description"] == "A cat asleep"
    assert updated.json()["meta"]["focus"] == {"x": -0.5, "y": 0.5}
    again = await alice.client.get(f"/api/v1/media/{media_id}")
    assert again.json()["description"] == "A cat asleep"

    too_long = await alice.client.put(f"/api/v1/media/{media_id}", data={"description": "y" * 1501})
    assert too_long.status_code == 422
    assert (await alice.client.get(f"/api/v1/media/{media_id}")).json()["description"] == (
        "A cat asleep"
    )


async def test_others_cannot_see_change_or_delete_your_media(alice: Person, bob: Person) -> None:
    media_id = await uploaded(alice, description="mine")
    assert (await bob.client.get(f"/api/v1/media/{media_id}")).status_code == 404
    put = await bob.client.put(f"/api/v1/media/{media_id}", data={"description": "hijacked"})
    assert put.status_code == 404
    assert (await bob.client.delete(f"/api/v1/media/{media_id}")).status_code == 404
    assert (await alice.client.get(f"/api/v1/media/{media_id}")).json()["description"] == "mine"
    assert (await alice.client.get("/api/v1/media/not-a-number")).status_code == 404


async def test_delete_removes_the_files(alice: Person, client: httpx.AsyncClient) -> None:
    response = await upload(alice.client, image_bytes())
    media = response.json()
    path = "/media/" + media["url"].rsplit("/media/", 1)[1]
    assert (await client.get(path)).status_code == 200
    assert (await alice.client.delete(f"/api/v1/media/{media['id']}")).status_code == 200
    assert (await client.get(path)).status_code == 404
    assert (await alice.client.get(f"/api/v1/media/{media['id']}")).status_code == 404


async def test_file_serving_refuses_other_paths(client: httpx.AsyncClient) -> None:
    for path in ("/media/..%2Ftownsquare.sqlite3", "/media/townsquare.sqlite3", "/media/x.png"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json() == {"error": "Record not found"}


async def test_attach_in_order_and_list_per_status(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    first, second = await uploaded(alice), await uploaded(alice)
    status_id = await new_status(app, alice)
    async with state_of(app).db.write() as session:
        attached = await attach_media(
            session, alice.account.id, status_id, [int(second), int(first)]
        )
    assert [m.id for m in attached] == [int(second), int(first)]
    async with state_of(app).db.read() as session:
        by_status = await media_for_statuses(session, [status_id, 12345])
    assert [m.id for m in by_status[status_id]] == [int(second), int(first)]
    assert 12345 not in by_status

    # Attached media can no longer be deleted.
    assert (await alice.client.delete(f"/api/v1/media/{first}")).status_code == 422


async def test_attach_rules(app: FastAPI, alice: Person, bob: Person) -> None:
    db = state_of(app).db
    mine = [int(await uploaded(alice)) for _ in range(5)]
    bobs = int(await uploaded(bob))
    status_id = await new_status(app, alice)
    other_status = await new_status(app, alice)

    async def attach(status: int, ids: list[int]) -> None:
        async with db.write() as session:
            await attach_media(session, alice.account.id, status, ids)

    for ids in (mine, [bobs], [999]):
        with pytest.raises(ApiError) as error:
            await attach(status_id, ids)
        assert error.value.status == 422

    await attach(other_status, [mine[0]])
    with pytest.raises(ApiError) as error:
        await attach(status_id, [mine[1], mine[0]])
    assert error.value.status == 422
    async with db.read() as session:
        # The failed attempt changed nothing.
        assert status_id not in await media_for_statuses(session, [status_id])

    # Editing a status: listing the same status's media again is fine, and dropped media detach.
    await attach(other_status, [mine[1], mine[0]])
    await attach(other_status, [mine[1]])
    async with db.read() as session:
        remaining = await media_for_statuses(session, [other_status])
    assert [m.id for m in remaining[other_status]] == [mine[1]]
