"""Statuses with images: attaching uploads, the only_media filter, and what cannot be attached."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from tests.conftest import Person


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _upload(person: Person) -> str:
    response = await person.client.post(
        "/api/v2/media", files={"file": ("pic.png", _png(), "image/png")}
    )
    assert response.status_code in (200, 202), response.text
    media_id: str = response.json()["id"]
    return media_id


async def test_status_with_media(media_dir: Path, alice: Person, bob: Person) -> None:
    first, second = await _upload(alice), await _upload(alice)
    posted = await alice.client.post(
        "/api/v1/statuses", data={"media_ids[]": [second, first], "status": ""}
    )
    assert posted.status_code == 200, posted.text
    assert [m["id"] for m in posted.json()["media_attachments"]] == [second, first]
    await alice.client.post("/api/v1/statuses", json={"status": "just words"})

    only_media = await bob.client.get(f"/api/v1/accounts/{alice.id}/statuses?only_media=true")
    assert [s["id"] for s in only_media.json()] == [posted.json()["id"]]

    # Someone else's upload, or one already used, cannot be attached.
    theirs = await alice.client.post("/api/v1/statuses", json={"status": "x", "media_ids": [first]})
    assert theirs.status_code == 422
    stolen = await bob.client.post(
        "/api/v1/statuses", json={"status": "x", "media_ids": [await _upload(alice)]}
    )
    assert stolen.status_code == 422


async def test_media_and_poll_together_are_refused(media_dir: Path, alice: Person) -> None:
    media_id = await _upload(alice)
    response = await alice.client.post(
        "/api/v1/statuses",
        json={
            "status": "both",
            "media_ids": [media_id],
            "poll": {"options": ["a", "b"], "expires_in": 600},
        },
    )
    assert response.status_code == 422
