from __future__ import annotations

import io

from PIL import Image

from tests.conftest import Person


def _png(width: int = 600, height: int = 600) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_verify_credentials_shows_the_source(alice: Person) -> None:
    response = await alice.client.get("/api/v1/accounts/verify_credentials")
    assert response.status_code == 200
    me = response.json()
    assert me["id"] == alice.id
    assert me["acct"] == "alice"
    assert me["url"] == "http://testserver/@alice"
    assert me["created_at"].endswith("T00:00:00.000Z")
    assert me["avatar"] == "http://testserver/static/avatar.png"
    assert me["source"]["note"] == ""
    assert me["source"]["follow_requests_count"] == 0
    assert me["role"]["name"] == ""


async def test_update_display_name_note_and_flags(alice: Person, bob: Person) -> None:
    response = await alice.client.patch(
        "/api/v1/accounts/update_credentials",
        data={
            "display_name": "Alice A.",
            "note": "Hi @bob <script>x</script>\n\nSee https://example.org/page",
            "locked": "true",
            "bot": "1",
            "source[privacy]": "private",
            "source[language]": "de",
        },
    )
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["display_name"] == "Alice A."
    assert me["locked"] is True and me["bot"] is True
    assert "<script>" not in me["note"]
    assert "&lt;script&gt;" in me["note"]
    assert 'href="http://testserver/@bob"' in me["note"]
    assert 'href="https://example.org/page"' in me["note"]
    assert me["note"].count("<p>") == 2
    assert me["source"]["note"].startswith("Hi @bob")
    assert me["source"]["privacy"] == "private"
    prefs = (await alice.client.get("/api/v1/preferences")).json()
    assert prefs["posting:default:visibility"] == "private"
    assert prefs["posting:default:language"] == "de"
    seen_by_bob = (await bob.client.get(f"/api/v1/accounts/{alice.id}")).json()
    assert seen_by_bob["display_name"] == "Alice A."
    assert "source" not in seen_by_bob


async def test_profile_fields_rails_style_and_json(alice: Person) -> None:
    response = await alice.client.patch(
        "/api/v1/accounts/update_credentials",
        data={
            "fields_attributes[1][name]": "Site",
            "fields_attributes[1][value]": "https://alice.example",
            "fields_attributes[0][name]": "Pronouns",
            "fields_attributes[0][value]": "she/her",
        },
    )
    assert response.status_code == 200
    fields = response.json()["fields"]
    assert [f["name"] for f in fields] == ["Pronouns", "Site"]
    assert 'href="https://alice.example"' in fields[1]["value"]
    assert not fields[0]["value"].startswith("<p>")
    assert response.json()["source"]["fields"][1]["value"] == "https://alice.example"

    cleared = await alice.client.patch(
        "/api/v1/accounts/update_credentials",
        json={"fields_attributes": [{"name": "Only", "value": "one"}, {"name": "", "value": ""}]},
    )
    assert [f["name"] for f in cleared.json()["fields"]] == ["Only"]


async def test_update_credentials_validation(alice: Person) -> None:
    too_many = {
        f"fields_attributes[{i}][{part}]": "x" for i in range(5) for part in ("name", "value")
    }
    cases = [
        {"display_name": "x" * 101},
        {"note": "x" * 501},
        {"locked": "maybe"},
        {"source[privacy]": "everyone"},
        {"source[language]": "english please"},
        {"fields_attributes[0][name]": "n" * 256},
        too_many,
    ]
    for case in cases:
        response = await alice.client.patch("/api/v1/accounts/update_credentials", data=case)
        assert response.status_code == 422, case
    me = (await alice.client.get("/api/v1/accounts/verify_credentials")).json()
    assert me["display_name"] == "" and me["locked"] is False and me["fields"] == []


async def test_avatar_and_header_upload(alice: Person, media_dir: object) -> None:
    response = await alice.client.patch(
        "/api/v1/accounts/update_credentials",
        files={
            "avatar": ("me.png", _png(), "image/png"),
            "header": ("wide.png", _png(1500, 500), "image/png"),
        },
        data={"display_name": "With picture"},
    )
    assert response.status_code == 200, response.text
    me = response.json()
    assert me["avatar"].startswith("http://testserver/media/")
    assert me["header"].startswith("http://testserver/media/")
    assert me["avatar"] != me["header"]
    served = await alice.client.get(me["avatar"].removeprefix("http://testserver"))
    assert served.status_code == 200

    broken = await alice.client.patch(
        "/api/v1/accounts/update_credentials",
        files={"avatar": ("bad.png", b"not an image", "image/png")},
    )
    assert broken.status_code == 422
    after = (await alice.client.get("/api/v1/accounts/verify_credentials")).json()
    assert after["avatar"] == me["avatar"]
