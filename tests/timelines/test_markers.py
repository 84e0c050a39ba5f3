"""Read markers for home and notifications."""

from __future__ import annotations

from tests.conftest import Person


async def test_markers_are_saved_and_versioned(alice: Person, bob: Person) -> None:
    empty = await alice.client.get("/api/v1/markers", params={"timeline[]": ["home"]})
    assert empty.status_code == 200
    assert empty.json() == {}

    saved = await alice.client.post("/api/v1/markers", data={"home[last_read_id]": "103"})
    assert saved.status_code == 200, saved.text
    home = saved.json()["home"]
    assert home["last_read_id"] == "103"
    assert home["version"] == 1
    assert home["updated_at"].endswith("Z")

    again = await alice.client.post(
        "/api/v1/markers",
        json={"home": {"last_read_id": "110"}, "notifications": {"last_read_id": "7"}},
    )
    assert again.json()["home"]["version"] == 2
    assert again.json()["notifications"] == {
        "last_read_id": "7",
        "version": 1,
        "updated_at": again.json()["notifications"]["updated_at"],
    }

    both = await alice.client.get(
        "/api/v1/markers", params={"timeline[]": ["home", "notifications"]}
    )
    assert both.json()["home"]["last_read_id"] == "110"
    assert both.json()["notifications"]["last_read_id"] == "7"
    only_home = await alice.client.get("/api/v1/markers", params={"timeline[]": "home"})
    assert set(only_home.json()) == {"home"}
    assert (await bob.client.get("/api/v1/markers", params={"timeline[]": "home"})).json() == {}


async def test_bad_markers_are_refused(alice: Person) -> None:
    response = await alice.client.post("/api/v1/markers", data={"home[last_read_id]": "soon"})
    assert response.status_code == 422
    assert "error" in response.json()
    shown = await alice.client.get("/api/v1/markers", params={"timeline[]": "home"})
    assert shown.json() == {}
