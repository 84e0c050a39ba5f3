"""Discovery documents under ``/.well-known``: WebFinger, host-meta and NodeInfo."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response

from townsquare import __version__
from townsquare.accounts.models import Account
from townsquare.accounts.service import find_by_username
from townsquare.api.errors import ApiError
from townsquare.api.responses import FastJSON
from townsquare.config import Settings
from townsquare.instance.info import cached_stats
from townsquare.state import app_state

router = APIRouter()

NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.0"
MAX_RESOURCE = 500


def _local_username(resource: str, settings: Settings) -> str | None:
    """The username in ``acct:user@domain``, ``user@domain`` or a local profile URL, if local."""
    resource = resource.strip()
    if resource.startswith(("http://", "https://")):
        parts = urlsplit(resource)
        if parts.netloc.lower() != urlsplit(settings.public_url).netloc.lower():
            return None
        path = parts.path.rstrip("/")
        if path.startswith("/@"):
            return path[2:] or None
        if path.startswith("/users/"):
            return path.removeprefix("/users/") or None
        return None
    acct = resource.removeprefix("acct:").lstrip("@")
    username, _, domain = acct.partition("@")
    if not username or "/" in username or domain.lower() != settings.domain.lower():
        return None
    return username


def webfinger_document(account: Account, settings: Settings) -> dict[str, Any]:
    profile = f"{settings.public_url}/@{account.username}"
    actor = f"{settings.public_url}/users/{account.username}"
    return {
        "subject": f"acct:{account.username}@{settings.domain}",
        "aliases": [profile, actor],
        "links": [
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": profile},
            {"rel": "self", "type": "application/activity+json", "href": actor},
        ],
    }


@router.get("/.well-known/webfinger")
async def webfinger(request: Request, resource: str = "") -> Response:
    state = app_state(request)
    if not resource or len(resource) > MAX_RESOURCE:
        raise ApiError(400, "resource parameter is required")
    username = _local_username(resource, state.settings)
    if username is None:
        raise ApiError(404, "Record not found")
    async with state.db.read() as session:
        account = await find_by_username(session, username)
    if account is None or account.suspended_at is not None:
        raise ApiError(404, "Record not found")
    return FastJSON(
        webfinger_document(account, state.settings),
        media_type="application/jrd+json",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=259200, public"},
    )


@router.get("/.well-known/host-meta")
async def host_meta(request: Request) -> Response:
    base = app_state(request).settings.public_url
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{base}/.well-known/webfinger?resource={{uri}}"/>\n'
        "</XRD>\n"
    )
    return Response(body, media_type="application/xrd+xml")


@router.get("/.well-known/nodeinfo")
async def nodeinfo_links(request: Request) -> dict[str, Any]:
    base = app_state(request).settings.public_url
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{base}/nodeinfo/2.0"}]}


@router.get("/nodeinfo/2.0")
async def nodeinfo(request: Request) -> Response:
    state = app_state(request)
    stats = await cached_stats(state)
    document = {
        "version": "2.0",
        "software": {"name": "townsquare", "version": __version__},
        "protocols": [],
        "services": {"outbound": [], "inbound": []},
        "usage": {
            "users": {
                "total": stats.user_count,
                "activeMonth": stats.active_month,
                "activeHalfyear": stats.active_halfyear,
            },
            "localPosts": stats.status_count,
        },
        "openRegistrations": state.settings.registrations_open,
        "metadata": {
            "nodeName": state.settings.instance_title,
            "nodeDescription": state.settings.instance_description,
        },
    }
    return FastJSON(
        document,
        media_type=f'application/json; profile="{NODEINFO_SCHEMA}#"',
    )
