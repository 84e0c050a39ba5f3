"""Statuses with images: attaching uploads, the only_media filter, and what cannot be attached."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlencode

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


async def test_an_edit_changes_the_words_of_a_posted_image(
    media_dir: Path, alice: Person, bob: Person
) -> None:
    first, second = await _upload(alice), await _upload(alice)
    posted = await alice.client.post(
        "/api/v1/statuses", data={"media_ids[]": [first, second], "status": "two pictures"}
    )
    status_id = posted.json()["id"]
    assert (await bob.client.get(f"/api/v1/statuses/{status_id}")).status_code == 200

    # Once posted, an image is described through an edit of its status, not on its own.
    direct = await alice.client.put(f"/api/v1/media/{first}", data={"description": "sneaky"})
    assert direct.status_code == 422
    assert "edit the status" in direct.json()["error"]

    # Rails-style form keys, one image's fields after the other's, as Mastodon clients send them.
    form = [
        ("status", "two pictures"),
        ("media_ids[]", first),
        ("media_ids[]", second),
        ("media_attributes[][id]", first),
        ("media_attributes[][description]", "A heron"),
        ("media_attributes[][id]", second),
        ("media_attributes[][description]", "A pond"),
    ]
    edited = await alice.client.put(
        f"/api/v1/statuses/{status_id}",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert edited.status_code == 200, edited.text
    described = {m["id"]: m["description"] for m in edited.json()["media_attachments"]}
    assert described == {first: "A heron", second: "A pond"}
    # Another reader sees it at once, and the edit is in the history.
    seen = (await bob.client.get(f"/api/v1/statuses/{status_id}")).json()
    assert [m["description"] for m in seen["media_attachments"]] == ["A heron", "A pond"]
    assert seen["edited_at"] is not None

    # JSON, with a focus; ids of images that are not the status's own are ignored.
    stranger = await _upload(bob)
    again = await alice.client.put(
        f"/api/v1/statuses/{status_id}",
        json={
            "status": "two pictures",
            "media_attributes": [
                {"id": second, "description": "A still pond", "focus": "0.5,-0.5"},
                {"id": stranger, "description": "not yours"},
            ],
        },
    )
    assert again.status_code == 200, again.text
    pond = again.json()["media_attachments"][1]
    assert pond["description"] == "A still pond"
    assert pond["meta"]["focus"] == {"x": 0.5, "y": -0.5}
    assert (await bob.client.get(f"/api/v1/media/{stranger}")).json()["description"] is None

    too_long = await alice.client.put(
        f"/api/v1/statuses/{status_id}",
        json={
            "status": "two pictures",
            "media_attributes": [{"id": first, "description": "x" * 1501}],
        },
    )
    assert too_long.status_code == 422
    unchanged = (await bob.client.get(f"/api/v1/statuses/{status_id}")).json()
    assert unchanged["media_attachments"][0]["description"] == "A heron"
