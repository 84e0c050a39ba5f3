"""The instance documents apps read on start-up, and the discovery documents."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Person
from townsquare import MASTODON_COMPAT_VERSION, __version__
from townsquare.config import Settings


@pytest.mark.parametrize("path", ["/api/v2/instance", "/api/v2/instance/"])
async def test_instance_v2(client: httpx.AsyncClient, settings: Settings, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["domain"] == "testserver"
    assert body["version"] == f"{MASTODON_COMPAT_VERSION} (compatible; Townsquare {__version__})"
    assert body["api_versions"] == {"mastodon": 6}
    config = body["configuration"]
    assert config["statuses"] == {
        "max_characters": settings.max_status_chars,
        "max_media_attachments": settings.max_media_attachments,
        "characters_reserved_per_url": 23,
    }
    assert "image/png" in config["media_attachments"]["supported_mime_types"]
    assert config["media_attachments"]["image_size_limit"] == settings.max_image_bytes
    assert config["media_attachments"]["image_matrix_limit"] == settings.max_image_pixels
    assert config["polls"]["max_options"] == settings.poll_max_options
    assert config["accounts"]["max_pinned_statuses"] == 5
    assert config["urls"]["streaming"] == "ws://testserver"
    assert body["registrations"]["enabled"] is True
    assert body["contact"]["account"] is None
    assert body["rules"] == []
    thumbnail = await client.get(body["thumbnail"]["url"].removeprefix("http://testserver"))
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/png"


@pytest.mark.parametrize("path", ["/api/v1/instance", "/api/v1/instance/"])
async def test_instance_v1_counts_people_and_posts(
    alice: Person, bob: Person, client: httpx.AsyncClient, path: str
) -> None:
    await alice.client.post("/api/v1/statuses", data={"status": "hello"})
    response = await client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["uri"] == "testserver"
    assert body["stats"] == {"user_count": 2, "status_count": 1, "domain_count": 1}
    assert body["urls"]["streaming_api"] == "ws://testserver"
    assert body["registrations"] is True
    assert isinstance(body["configuration"]["statuses"]["max_characters"], int)


async def test_instance_sub_documents(alice: Person, client: httpx.AsyncClient) -> None:
    for path in ("peers", "rules", "domain_blocks"):
        response = await client.get(f"/api/v1/instance/{path}")
        assert response.status_code == 200 and response.json() == []
    assert (await client.get("/api/v1/instance/translation_languages")).json() == {}
    extended = (await client.get("/api/v1/instance/extended_description")).json()
    assert extended["content"].startswith("<p>")

    await alice.client.post("/api/v1/statuses", data={"status": "one"})
    activity = (await client.get("/api/v1/instance/activity")).json()
    assert len(activity) == 12
    this_week = activity[0]
    assert set(this_week) == {"week", "statuses", "logins", "registrations"}
    assert this_week["statuses"] == "1"
    assert this_week["registrations"] == "1"


async def test_webfinger_finds_local_accounts_only(
    alice: Person, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        "/.well-known/webfinger", params={"resource": "acct:alice@testserver"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jrd+json")
    body = response.json()
    assert body["subject"] == "acct:alice@testserver"
    assert {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
            "href": "http://testserver/@alice"} in body["links"]  # fmt: skip
    by_url = await client.get(
        "/.well-known/webfinger", params={"resource": "http://testserver/@alice"}
    )
    assert by_url.json()["subject"] == "acct:alice@testserver"

    for resource in ("acct:alice@elsewhere.example", "acct:nobody@testserver", "acct:", "x"):
        missing = await client.get("/.well-known/webfinger", params={"resource": resource})
        assert missing.status_code == 404, resource
    assert (await client.get("/.well-known/webfinger")).status_code == 400


async def test_host_meta_and_nodeinfo(alice: Person, client: httpx.AsyncClient) -> None:
    host_meta = await client.get("/.well-known/host-meta")
    assert host_meta.headers["content-type"].startswith("application/xrd+xml")
    assert "http://testserver/.well-known/webfinger?resource={uri}" in host_meta.text

    links = (await client.get("/.well-known/nodeinfo")).json()["links"]
    assert links[0]["href"] == "http://testserver/nodeinfo/2.0"
    await alice.client.post("/api/v1/statuses", data={"status": "counted"})
    info = (await client.get("/nodeinfo/2.0")).json()
    assert info["software"] == {"name": "townsquare", "version": __version__}
    assert info["protocols"] == []
    assert info["usage"]["users"]["total"] == 1
    assert info["usage"]["users"]["activeMonth"] == 1
    assert info["usage"]["localPosts"] == 1
    assert info["openRegistrations"] is True


async def test_start_up_endpoints_answer(alice: Person, client: httpx.AsyncClient) -> None:
    for path in (
        "/api/v1/custom_emojis",
        "/api/v1/filters",
        "/api/v2/filters",
        "/api/v1/announcements",
        "/api/v1/featured_tags",
        "/api/v1/trends/links",
    ):
        response = await alice.client.get(path)
        assert response.status_code == 200, path
        assert response.json() == [], path
    push = await alice.client.get("/api/v1/push/subscription")
    assert push.status_code == 404
    assert push.json() == {"error": "Record not found"}
    refused = await alice.client.post("/api/v2/filters", data={"title": "x"})
    assert refused.status_code == 422
    assert (await client.get("/api/v1/filters")).status_code == 401
