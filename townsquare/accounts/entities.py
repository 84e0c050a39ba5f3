"""The Mastodon ``Account`` and ``CredentialAccount`` entities."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import BigInteger, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.config import Settings
from townsquare.statuses.cache import VersionedCache

OFFICIAL_ROLE = {"id": "official", "name": "Official", "color": ""}
# Mastodon's permission bit sets for its built-in roles, so clients that show moderation tools
# from ``role.permissions`` behave as they do on Mastodon.
_ROLES: dict[str, dict[str, Any]] = {
    "user": {"id": "-99", "name": "", "permissions": "65536", "color": "", "highlighted": False},
    "moderator": {
        "id": "1",
        "name": "Moderator",
        "permissions": "1052",
        "color": "",
        "highlighted": True,
    },
    "admin": {"id": "2", "name": "Admin", "permissions": "1", "color": "", "highlighted": True},
}


def iso_time(moment: dt.datetime) -> str:
    """``2026-11-23T13:00:00.000Z``, the form Mastodon uses for every timestamp."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _midnight(moment: dt.datetime) -> str:
    # Mastodon rounds account creation down to the day so profiles do not reveal sign-up times.
    return iso_time(moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0))


def _media_url(settings: Settings, file_name: str | None, default: str) -> str:
    if file_name:
        return f"{settings.public_url}/media/{file_name}"
    return f"{settings.public_url}/static/{default}"


def role_entity(account: AccountFields) -> dict[str, Any]:
    return dict(_ROLES.get(account.role, _ROLES["user"]))


def _highlighted_roles(account: AccountFields) -> list[dict[str, Any]]:
    roles: list[dict[str, Any]] = []
    if account.verified:
        roles.append(dict(OFFICIAL_ROLE))
    role = _ROLES.get(account.role)
    if role is not None and role["highlighted"]:
        roles.append({"id": role["id"], "name": role["name"], "color": role["color"]})
    return roles


def profile_url(account: AccountFields, settings: Settings) -> str:
    return f"{settings.public_url}/@{account.username}"


class AccountFields(Protocol):
    """What the public Account entity is made of: an :class:`Account`, or a row of
    :data:`ENTITY_COLUMNS`."""

    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def note_html(self) -> str: ...
    @property
    def fields(self) -> list[dict[str, Any]]: ...
    @property
    def avatar_file(self) -> str | None: ...
    @property
    def header_file(self) -> str | None: ...
    @property
    def locked(self) -> bool: ...
    @property
    def bot(self) -> bool: ...
    @property
    def discoverable(self) -> bool: ...
    @property
    def indexable(self) -> bool: ...
    @property
    def verified(self) -> bool: ...
    @property
    def role(self) -> str: ...
    @property
    def suspended_at(self) -> dt.datetime | None: ...
    @property
    def silenced_at(self) -> dt.datetime | None: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def last_status_at(self) -> dt.datetime | None: ...
    @property
    def followers_count(self) -> int: ...
    @property
    def following_count(self) -> int: ...
    @property
    def statuses_count(self) -> int: ...


# Every column the public entity reads, in one place: a row of these is also the version a
# cached entity is checked against (see townsquare/statuses/cache.py).
ENTITY_COLUMNS = (
    Account.id,
    Account.username,
    Account.display_name,
    Account.note_html,
    Account.fields,
    Account.avatar_file,
    Account.header_file,
    Account.locked,
    Account.bot,
    Account.discoverable,
    Account.indexable,
    Account.verified,
    Account.role,
    Account.suspended_at,
    Account.silenced_at,
    Account.created_at,
    Account.last_status_at,
    Account.followers_count,
    Account.following_count,
    Account.statuses_count,
)


# Built once: every page of statuses runs it.
_ENTITY_ROWS = select(*ENTITY_COLUMNS).where(
    Account.id.in_(bindparam("ids", type_=BigInteger, expanding=True))
)


def account_entity(account: Account, settings: Settings, *, source: bool = False) -> dict[str, Any]:
    """The Account entity; with ``source`` the CredentialAccount the owner sees of themselves."""
    entity = public_account_entity(account, settings)
    if source:
        entity["source"] = source_entity(account)
        entity["role"] = role_entity(account)
    return entity


def public_account_entity(account: AccountFields, settings: Settings) -> dict[str, Any]:
    suspended = account.suspended_at is not None
    avatar = _media_url(settings, None if suspended else account.avatar_file, "avatar.png")
    header = _media_url(settings, None if suspended else account.header_file, "header.png")
    fields = [] if suspended else list(account.fields or [])
    entity: dict[str, Any] = {
        "id": str(account.id),
        "username": account.username,
        "acct": account.username,
        "display_name": "" if suspended else account.display_name,
        "locked": account.locked,
        "bot": account.bot,
        "discoverable": account.discoverable,
        "indexable": account.indexable,
        "group": False,
        "noindex": not account.indexable,
        "created_at": _midnight(account.created_at),
        "note": "" if suspended else account.note_html,
        "url": profile_url(account, settings),
        "uri": f"{settings.public_url}/users/{account.username}",
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": 0 if suspended else account.followers_count,
        "following_count": 0 if suspended else account.following_count,
        "statuses_count": 0 if suspended else account.statuses_count,
        "last_status_at": (
            account.last_status_at.astimezone(dt.UTC).date().isoformat()
            if account.last_status_at and not suspended
            else None
        ),
        "hide_collections": False,
        "emojis": [],
        "fields": [
            {
                "name": field.get("name", ""),
                "value": field.get("value_html", ""),
                "verified_at": None,
            }
            for field in fields
        ],
        "roles": [] if suspended else _highlighted_roles(account),
        "verified": account.verified and not suspended,
    }
    if suspended:
        entity["suspended"] = True
    if account.silenced_at is not None and not suspended:
        entity["limited"] = True
    return entity


def source_entity(account: Account, follow_requests_count: int = 0) -> dict[str, Any]:
    return {
        "privacy": account.default_visibility,
        "sensitive": account.default_sensitive,
        "language": account.default_language,
        "note": account.note,
        "fields": [
            {"name": field.get("name", ""), "value": field.get("value", ""), "verified_at": None}
            for field in account.fields or []
        ],
        "follow_requests_count": follow_requests_count,
        "hide_collections": False,
        "discoverable": account.discoverable,
        "indexable": account.indexable,
    }


async def load_accounts(session: AsyncSession, ids: Iterable[int]) -> dict[int, Account]:
    """The accounts with these ids (missing ones are simply absent), in one query."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.scalars(select(Account).where(Account.id.in_(wanted)))
    return {account.id: account for account in rows}


async def account_entities(
    session: AsyncSession,
    settings: Settings,
    cache: VersionedCache[dict[str, Any]],
    ids: Iterable[int],
) -> dict[int, dict[str, Any]]:
    """Public Account entities by id (missing accounts are absent), in one query.

    The query reads every column the entity is made of; a cached entity is used only when that
    row is exactly the one it was rendered from, so profile edits, counters and moderation show
    at once. The entities are shared: do not change them.
    """
    wanted = set(ids)
    if not wanted:
        return {}
    entities: dict[int, dict[str, Any]] = {}
    for row in await session.execute(_ENTITY_ROWS, {"ids": list(wanted)}):
        version = tuple(row)
        entity = cache.get(row.id, version)
        if entity is None:
            entity = public_account_entity(row, settings)
            cache.put(row.id, version, entity)
        entities[row.id] = entity
    return entities
