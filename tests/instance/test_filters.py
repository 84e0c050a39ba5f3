"""Content filters: stored per person, private to them, and matched against statuses."""

from __future__ import annotations

from fastapi import FastAPI

from tests.conftest import Person
from townsquare.instance.filters import filter_matches
from townsquare.state import state_of
from townsquare.statuses.models import Status


async def test_create_read_update_delete_v2_filter(alice: Person, bob: Person) -> None:
    created = await alice.client.post(
        "/api/v2/filters",
        json={
            "title": "Spoilers",
            "context": ["home", "public"],
            "filter_action": "hide",
            "expires_in": 3600,
            "keywords_attributes": [
                {"keyword": "finale", "whole_word": True},
                {"keyword": "season 2", "whole_word": False},
            ],
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["title"] == "Spoilers"
    assert body["context"] == ["home", "public"]
    assert body["filter_action"] == "hide"
    assert body["expires_at"].endswith("Z")
    assert [(k["keyword"], k["whole_word"]) for k in body["keywords"]] == [
        ("finale", True),
        ("season 2", False),
    ]
    filter_id = body["id"]

    listed = (await alice.client.get("/api/v2/filters")).json()
    assert [f["id"] for f in listed] == [filter_id]
    assert (await bob.client.get("/api/v2/filters")).json() == []
    assert (await bob.client.get(f"/api/v2/filters/{filter_id}")).status_code == 404
    assert (await bob.client.delete(f"/api/v2/filters/{filter_id}")).status_code == 404

    first_keyword = body["keywords"][0]["id"]
    updated = await alice.client.put(
        f"/api/v2/filters/{filter_id}",
        json={
            "title": "TV spoilers",
            "expires_in": "",
            "keywords_attributes": [
                {"id": first_keyword, "_destroy": True},
                {"keyword": "cliffhanger"},
            ],
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["title"] == "TV spoilers"
    assert updated.json()["expires_at"] is None
    assert [k["keyword"] for k in updated.json()["keywords"]] == ["season 2", "cliffhanger"]

    assert (await alice.client.delete(f"/api/v2/filters/{filter_id}")).json() == {}
    assert (await alice.client.get("/api/v2/filters")).json() == []


async def test_filter_input_is_validated(alice: Person) -> None:
    for payload in (
        {"title": "x"},
        {"title": "x", "context": ["elsewhere"]},
        {"title": "", "context": ["home"]},
        {"title": "x", "context": ["home"], "filter_action": "explode"},
        {"title": "x", "context": ["home"], "expires_in": "soon"},
    ):
        response = await alice.client.post("/api/v2/filters", json=payload)
        assert response.status_code == 422, payload
    assert (await alice.client.get("/api/v2/filters")).json() == []


async def test_keywords_and_statuses_sub_resources(alice: Person, bob: Person) -> None:
    status = await bob.client.post("/api/v1/statuses", data={"status": "annoying post"})
    status_id = status.json()["id"]
    filter_id = (
        await alice.client.post("/api/v2/filters", data={"title": "t", "context[]": "home"})
    ).json()["id"]

    keyword = await alice.client.post(
        f"/api/v2/filters/{filter_id}/keywords", data={"keyword": "crypto", "whole_word": "false"}
    )
    assert keyword.status_code == 200
    keyword_id = keyword.json()["id"]
    changed = await alice.client.put(
        f"/api/v2/filters/keywords/{keyword_id}", data={"keyword": "bitcoin"}
    )
    assert changed.json() == {"id": keyword_id, "keyword": "bitcoin", "whole_word": False}
    assert (await bob.client.get(f"/api/v2/filters/keywords/{keyword_id}")).status_code == 404

    entry = await alice.client.post(
        f"/api/v2/filters/{filter_id}/statuses", data={"status_id": status_id}
    )
    assert entry.status_code == 200
    assert entry.json()["status_id"] == status_id
    again = await alice.client.post(
        f"/api/v2/filters/{filter_id}/statuses", data={"status_id": status_id}
    )
    assert again.status_code == 422
    listed = (await alice.client.get(f"/api/v2/filters/{filter_id}/statuses")).json()
    assert [s["status_id"] for s in listed] == [status_id]
    assert (await alice.client.delete(f"/api/v2/filters/statuses/{listed[0]['id']}")).json() == {}
    assert (await alice.client.get(f"/api/v2/filters/{filter_id}/statuses")).json() == []
    assert (await alice.client.delete(f"/api/v2/filters/keywords/{keyword_id}")).json() == {}
    assert (await alice.client.get(f"/api/v2/filters/{filter_id}/keywords")).json() == []


async def test_v1_filters_are_keywords(alice: Person) -> None:
    created = await alice.client.post(
        "/api/v1/filters",
        data={"phrase": "election", "context[]": ["home", "notifications"], "irreversible": "true"},
    )
    assert created.status_code == 200, created.text
    v1 = created.json()
    assert v1["phrase"] == "election"
    assert v1["irreversible"] is True
    assert v1["whole_word"] is True
    assert v1["context"] == ["home", "notifications"]

    v2 = (await alice.client.get("/api/v2/filters")).json()
    assert v2[0]["title"] == "election" and v2[0]["filter_action"] == "hide"
    assert [k["id"] for k in v2[0]["keywords"]] == [v1["id"]]

    updated = await alice.client.put(
        f"/api/v1/filters/{v1['id']}", data={"phrase": "elections", "whole_word": "false"}
    )
    assert updated.json()["phrase"] == "elections" and updated.json()["whole_word"] is False
    assert [f["phrase"] for f in (await alice.client.get("/api/v1/filters")).json()] == [
        "elections"
    ]
    assert (await alice.client.delete(f"/api/v1/filters/{v1['id']}")).json() == {}
    assert (await alice.client.get("/api/v1/filters")).json() == []
    assert (await alice.client.get("/api/v2/filters")).json() == []


async def test_matching_statuses(app: FastAPI, alice: Person, bob: Person) -> None:
    await alice.client.post(
        "/api/v2/filters",
        json={
            "title": "Sport",
            "context": ["home"],
            "keywords_attributes": [
                {"keyword": "goal", "whole_word": True},
                {"keyword": "ball", "whole_word": False},
            ],
        },
    )
    texts = {
        1: "What a GOAL!",
        2: "goalkeeper training",
        3: "football tonight",
        4: "nothing to see",
    }
    statuses = [
        Status(id=n, account_id=bob.account.id, text=t, spoiler_text="") for n, t in texts.items()
    ]
    async with state_of(app).db.read() as session:
        home = await filter_matches(session, alice.account.id, statuses, "home")
        public = await filter_matches(session, alice.account.id, statuses, "public")
        others = await filter_matches(session, bob.account.id, statuses, "home")
    assert set(home) == {1, 3}
    assert home[1][0]["keyword_matches"] == ["goal"]
    assert home[1][0]["filter"]["title"] == "Sport"
    assert home[3][0]["keyword_matches"] == ["ball"]
    assert public == {} and others == {}
