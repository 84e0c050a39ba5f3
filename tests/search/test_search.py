"""Search finds what the searcher may see, and nothing else."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Person, PersonFactory


async def post(person: Person, text: str, **fields: str) -> str:
    response = await person.client.post("/api/v1/statuses", data={"status": text, **fields})
    assert response.status_code == 200, response.text
    status_id: str = response.json()["id"]
    return status_id


async def found_statuses(person: Person, q: str, **params: str) -> list[str]:
    response = await person.client.get(
        "/api/v2/search", params={"q": q, "type": "statuses", **params}
    )
    assert response.status_code == 200, response.text
    return [status["id"] for status in response.json()["statuses"]]


async def test_finds_a_public_post_by_a_word(alice: Person, bob: Person) -> None:
    wanted = await post(alice, "The allotment tomatoes are finally ripe")
    await post(alice, "Nothing to see here")
    assert await found_statuses(bob, "tomatoes") == [wanted]
    assert await found_statuses(bob, "TOMATOES ripe") == [wanted]
    assert await found_statuses(bob, "tomatoes bananas") == []
    spoiler = await post(alice, "details inside", spoiler_text="Aubergine spoilers")
    assert await found_statuses(bob, "aubergine") == [spoiler]

    response = await bob.client.get("/api/v2/search", params={"q": "tomatoes"})
    body = response.json()
    assert set(body) == {"accounts", "statuses", "hashtags"}
    assert body["statuses"][0]["content"]


async def test_edits_and_deletes_keep_the_index_in_step(alice: Person, bob: Person) -> None:
    status_id = await post(alice, "original wording with marmalade")
    edited = await alice.client.put(
        f"/api/v1/statuses/{status_id}", data={"status": "new wording with chutney"}
    )
    assert edited.status_code == 200, edited.text
    assert await found_statuses(bob, "marmalade") == []
    assert await found_statuses(bob, "chutney") == [status_id]
    assert (await alice.client.delete(f"/api/v1/statuses/{status_id}")).status_code == 200
    assert await found_statuses(bob, "chutney") == []


async def test_private_posts_and_direct_messages_stay_private(
    alice: Person, bob: Person, carol: Person
) -> None:
    private = await post(alice, "followers only parsnip", visibility="private")
    direct = await post(alice, "@bob secret parsnip", visibility="direct")
    # A stranger finds neither.
    assert await found_statuses(carol, "parsnip") == []
    # A mentioned recipient does not find the direct message through search either.
    assert direct not in await found_statuses(bob, "parsnip")
    # A follower finds the private post; the author finds both.
    await carol.client.post(f"/api/v1/accounts/{alice.id}/follow")
    assert await found_statuses(carol, "parsnip") == [private]
    assert await found_statuses(alice, "parsnip") == [direct, private]


async def test_blocked_and_muted_accounts_are_not_found(
    alice: Person, bob: Person, carol: Person
) -> None:
    await post(alice, "turnip harvest")
    await post(carol, "turnip soup")
    await bob.client.post(f"/api/v1/accounts/{alice.id}/block")
    await bob.client.post(f"/api/v1/accounts/{carol.id}/mute")
    assert await found_statuses(bob, "turnip") == []
    # Blocks hold both ways: alice does not find bob's posts either.
    await post(bob, "turnip pie")
    assert len(await found_statuses(alice, "turnip")) == 2  # her own and carol's
    accounts = await alice.client.get("/api/v2/search", params={"q": "bob", "type": "accounts"})
    assert accounts.json()["accounts"] == []


async def test_anonymous_search_finds_no_statuses(alice: Person, client: httpx.AsyncClient) -> None:
    await post(alice, "public beetroot")
    response = await client.get("/api/v2/search", params={"q": "beetroot"})
    assert response.status_code == 200
    assert response.json()["statuses"] == []
    paged = await client.get("/api/v2/search", params={"q": "beetroot", "offset": 5})
    assert paged.status_code == 401
    resolving = await client.get("/api/v2/search", params={"q": "beetroot", "resolve": "true"})
    assert resolving.status_code == 401
    assert "resolve" in resolving.json()["error"]


@pytest.mark.parametrize(
    "q",
    ['"', '""', "AND OR *", "NOT", "tomato*", "(", "a:b", "^x", "NEAR(a b)", "'", "-", "\\", "%_"],
)
async def test_query_syntax_is_not_interpreted(alice: Person, bob: Person, q: str) -> None:
    await post(alice, "AND OR NOT ordinary words")
    response = await bob.client.get("/api/v2/search", params={"q": q})
    assert response.status_code == 200, response.text


async def test_operator_words_are_plain_words(alice: Person, bob: Person) -> None:
    status_id = await post(alice, "cats AND dogs")
    assert await found_statuses(bob, "AND") == [status_id]
    assert await found_statuses(bob, "cats OR mice") == []


async def test_limits_are_bounded(bob: Person) -> None:
    assert (await bob.client.get("/api/v2/search", params={"q": "x" * 501})).status_code == 422
    assert (await bob.client.get("/api/v2/search", params={"q": "x", "limit": 41})).status_code == (
        422
    )
    assert (await bob.client.get("/api/v2/search", params={"q": "x", "type": "x"})).status_code == (
        422
    )
    assert (await bob.client.get("/api/v2/search")).status_code == 422


async def test_paging_and_author_filter(alice: Person, bob: Person) -> None:
    ids = [await post(alice, f"radish number {n}") for n in range(3)]
    bobs = await post(bob, "radish from bob")
    newest_first = [bobs, *reversed(ids)]
    assert await found_statuses(bob, "radish") == newest_first
    assert await found_statuses(bob, "radish", limit="2") == newest_first[:2]
    assert await found_statuses(bob, "radish", limit="2", offset="2") == newest_first[2:]
    assert await found_statuses(bob, "radish", max_id=ids[2]) == [ids[1], ids[0]]
    assert await found_statuses(bob, "radish", min_id=ids[0], limit="1") == [ids[1]]
    assert await found_statuses(bob, "radish", account_id=bob.id) == [bobs]


async def test_accounts_by_name(make_person: PersonFactory, alice: Person) -> None:
    await make_person("gardener")
    await make_person("garden_fan")
    await make_person("garden")
    response = await alice.client.get("/api/v2/search", params={"q": "garden", "type": "accounts"})
    names = [account["username"] for account in response.json()["accounts"]]
    assert names[0] == "garden"
    assert set(names) == {"garden", "gardener", "garden_fan"}
    exact = await alice.client.get("/api/v2/search", params={"q": "@gardener@testserver"})
    assert [a["username"] for a in exact.json()["accounts"]] == ["gardener"]
    remote = await alice.client.get("/api/v2/search", params={"q": "gardener@elsewhere.example"})
    assert remote.json()["accounts"] == []
    underscore = await alice.client.get(
        "/api/v2/search", params={"q": "garden_", "type": "accounts"}
    )
    assert [a["username"] for a in underscore.json()["accounts"]] == ["garden_fan"]


async def test_following_filter(alice: Person, bob: Person, carol: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    everyone = await alice.client.get("/api/v2/search", params={"q": "b", "type": "accounts"})
    assert [a["username"] for a in everyone.json()["accounts"]] == ["bob"]
    followed = await alice.client.get(
        "/api/v2/search", params={"q": "c", "type": "accounts", "following": "true"}
    )
    assert followed.json()["accounts"] == []


async def test_hashtags_by_prefix_v1_and_v2(alice: Person, client: httpx.AsyncClient) -> None:
    await post(alice, "#gardening and #gardens and #cooking")
    v2 = await client.get("/api/v2/search", params={"q": "#garden", "type": "hashtags"})
    hashtags = v2.json()["hashtags"]
    assert {tag["name"].lower() for tag in hashtags} == {"gardening", "gardens"}
    assert hashtags[0]["history"][0]["uses"] == "1"
    v1 = await client.get("/api/v1/search", params={"q": "cook"})
    assert [name.lower() for name in v1.json()["hashtags"]] == ["cooking"]
