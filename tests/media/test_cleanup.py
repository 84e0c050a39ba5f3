"""Uploads nobody used are removed with their files; attached media and avatars stay."""

from __future__ import annotations

import datetime as dt
import io

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.conftest import Person
from tests.media.conftest import image_bytes, upload
from townsquare.api.errors import ApiError
from townsquare.ids import new_id
from townsquare.media.cleanup import remove_unused_media
from townsquare.media.service import attach_media
from townsquare.state import state_of
from townsquare.statuses.models import Status


def local_path(url: str) -> str:
    return "/media/" + url.rsplit("/media/", 1)[1]


async def test_unused_uploads_are_removed(
    app: FastAPI, alice: Person, client: httpx.AsyncClient
) -> None:
    state = state_of(app)
    used = (await upload(alice.client, image_bytes())).json()
    unused = (await upload(alice.client, image_bytes())).json()
    async with state.db.write() as session:
        status = Status(id=new_id(), account_id=alice.account.id, text="kept")
        session.add(status)
        await session.flush()
        await attach_media(session, alice.account.id, status.id, [int(used["id"])])
    avatar = await alice.client.patch(
        "/api/v1/accounts/update_credentials",
        files={"avatar": ("me.png", image_bytes("PNG", (500, 300)), "image/png")},
    )
    assert avatar.status_code == 200, avatar.text
    avatar_url = avatar.json()["avatar"]

    # Recent uploads are kept for a day.
    assert await remove_unused_media(state) == 0
    assert await remove_unused_media(state, older_than=dt.timedelta(0)) == 1

    assert (await client.get(local_path(unused["url"]))).status_code == 404
    assert (await client.get(local_path(unused["preview_url"]))).status_code == 404
    assert (await alice.client.get(f"/api/v1/media/{unused['id']}")).status_code == 404
    assert (await client.get(local_path(used["url"]))).status_code == 200
    served_avatar = await client.get(local_path(avatar_url))
    assert served_avatar.status_code == 200
    assert served_avatar.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(served_avatar.content)).size == (400, 400)


async def test_profile_images_are_not_status_media(app: FastAPI, alice: Person) -> None:
    from townsquare.accounts.models import Account

    avatar = await alice.client.patch(
        "/api/v1/accounts/update_credentials",
        files={"avatar": ("me.png", image_bytes("PNG", (500, 300)), "image/png")},
    )
    assert avatar.status_code == 200, avatar.text
    state = state_of(app)
    async with state.db.read() as session:
        account = await session.get(Account, alice.account.id)
        assert account is not None and account.avatar_media_id is not None
        avatar_id = account.avatar_media_id
    assert (await alice.client.get(f"/api/v1/media/{avatar_id}")).status_code == 404
    async with state.db.write() as session:
        status = Status(id=new_id(), account_id=alice.account.id, text="x")
        session.add(status)
        await session.flush()
        with pytest.raises(ApiError):
            await attach_media(session, alice.account.id, status.id, [avatar_id])
