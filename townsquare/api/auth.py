"""Who is asking: bearer tokens (and, for the web app, session cookies) become a :class:`Viewer`.

Routes declare what they need with ``Depends(user("write:statuses"))`` (a logged-in account with
that scope), ``Depends(app_or_user("read"))`` (a client-credentials token will do), or
``Depends(anyone)`` (public endpoints; a token, if sent, must still be valid).

Reading requests (GET and HEAD) take what a token resolved to from a short-lived cache of the
worker (:class:`TokenCache`) instead of reading the token and its account again: the lookup
was a statement, a session and an ORM row per request, more than a cached timeline page costs.
An entry is used for at most ``TOKEN_CACHE_SECONDS`` and only while no write of this process
has touched tokens, applications or accounts since it was read (``Database.auth_generation``),
so a token revoked or an account suspended through this worker is refused by its very next
request, and by every other worker and node within ``TOKEN_CACHE_SECONDS``. Writing requests
always read the token afresh: what they do is done by an account as it is now.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import manager_of_class as manager_of
from sqlalchemy.orm.attributes import set_committed_value

from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError
from townsquare.db.base import utcnow
from townsquare.oauth.models import OAuthToken
from townsquare.oauth.scopes import covers
from townsquare.oauth.tokens import digest
from townsquare.shield import standing
from townsquare.state import AppState, app_state
from townsquare.statuses.page_reads import driver_reads

# How long another worker (or node) may go on serving reads to a token revoked, or an account
# suspended, elsewhere. Documented in docs/TIMELINES.md; tests/oauth/test_token_cache.py holds
# it to that.
TOKEN_CACHE_SECONDS = 2.0
TOKEN_CACHE_SIZE = 10_000
_CACHE_KEY = "token_cache"
_CACHED_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Viewer:
    """The caller. ``account`` is None for anonymous and client-credentials callers."""

    account: Account | None = None
    token_id: int | None = None
    app_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def account_id(self) -> int | None:
        return self.account.id if self.account else None

    def require_account(self) -> Account:
        if self.account is None:
            raise ApiError(401, "This method requires an authenticated user")
        return self.account


ANONYMOUS = Viewer()


@dataclass(frozen=True, slots=True)
class _Entry:
    viewer: Viewer
    generation: int
    read_at: float
    expires_at: dt.datetime | None


class TokenCache:
    """Token digest -> the :class:`Viewer` it resolved to, for reading requests of one worker.

    ``clock`` is the time source (monotonic seconds); tests move it instead of waiting.
    """

    def __init__(
        self, *, seconds: float = TOKEN_CACHE_SECONDS, size: int = TOKEN_CACHE_SIZE
    ) -> None:
        self.seconds = seconds
        self.size = size
        self.clock: Callable[[], float] = time.monotonic
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, token_digest: str, generation: int) -> Viewer | None:
        entry = self._entries.get(token_digest)
        if entry is None:
            return None
        if (
            entry.generation != generation
            or self.clock() - entry.read_at >= self.seconds
            or (entry.expires_at is not None and entry.expires_at <= utcnow())
        ):
            del self._entries[token_digest]
            return None
        return entry.viewer

    def put(
        self,
        token_digest: str,
        viewer: Viewer,
        *,
        generation: int,
        read_at: float,
        expires_at: dt.datetime | None,
    ) -> None:
        if self.seconds <= 0 or self.size <= 0:
            return
        self._entries[token_digest] = _Entry(viewer, generation, read_at, expires_at)
        self._entries.move_to_end(token_digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def token_cache(state: AppState) -> TokenCache:
    """The worker's token cache, made on first use."""
    cache = state.extras.get(_CACHE_KEY)
    if cache is None:
        cache = TokenCache()
        state.extras[_CACHE_KEY] = cache
    assert isinstance(cache, TokenCache)
    return cache


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # Browsers cannot set headers on WebSocket and EventSource requests.
    token = request.query_params.get("access_token")
    return token or None


async def resolve_viewer(request: Request) -> Viewer:
    """Look the token up once per request; the result is kept on ``request.state``."""
    cached = getattr(request.state, "viewer", None)
    if isinstance(cached, Viewer):
        return cached
    token = bearer_token(request)
    viewer = ANONYMOUS
    if token is not None:
        viewer = await _viewer_for_token(request, token)
    else:
        session_viewer = getattr(request.state, "session_viewer", None)
        if isinstance(session_viewer, Viewer):
            viewer = session_viewer
    request.state.viewer = viewer
    return viewer


async def _viewer_for_token(request: Request, token: str) -> Viewer:
    token_digest = digest(token)
    try:
        viewer = await _look_up_token(request, token_digest)
    except ApiError:
        standing.reject(token_digest)
        raise
    # The shield serves this token first from now on, without waiting for the database.
    standing.remember(token_digest, viewer.account is not None and viewer.account.verified)
    return viewer


# The account's mapped attributes and their columns, in the order the lookup reads them.
_ACCOUNT_ATTRIBUTES = tuple((prop.key, prop.columns[0]) for prop in inspect(Account).column_attrs)
# Built once, and run on the driver's connection (townsquare/statuses/page_reads.py): through
# the ORM, a session and its rows cost more than a cached timeline page.
_TOKEN_AND_ACCOUNT = (
    select(
        OAuthToken.id,
        OAuthToken.app_id,
        OAuthToken.account_id,
        OAuthToken.scopes,
        OAuthToken.expires_at,
        OAuthToken.revoked_at,
        *(column for _, column in _ACCOUNT_ATTRIBUTES),
    )
    .outerjoin(Account, Account.id == OAuthToken.account_id)
    .where(OAuthToken.token_digest == bindparam("token_digest"))
)
_TOKEN_FIELDS = 6
_ACCOUNT_MANAGER = manager_of(Account)


def _account_from(values: Sequence[Any]) -> Account:
    """The account of a row of ``_TOKEN_AND_ACCOUNT``, as the ORM would have loaded it and the
    session closed: detached, every column loaded."""
    account: Account = _ACCOUNT_MANAGER.new_instance()
    for (key, _), value in zip(_ACCOUNT_ATTRIBUTES, values, strict=True):
        set_committed_value(account, key, value)
    make_transient_to_detached(account)
    return account


async def _look_up_token(request: Request, token_digest: str) -> Viewer:
    state = app_state(request)
    cacheable = request.scope.get("method") in _CACHED_METHODS
    cache = token_cache(state) if cacheable else None
    # Read before the lookup: a revocation committed while it runs moves the generation on,
    # and what the lookup read is then never used again.
    generation = state.db.auth_generation
    if cache is not None:
        cached = cache.get(token_digest, generation)
        if cached is not None:
            return cached
    read_at = time.monotonic() if cache is None else cache.clock()
    # One row by a unique index: a quick read (no hop to a connection thread on SQLite).
    async with driver_reads(state.db) as rows:
        found = await rows.typed(_TOKEN_AND_ACCOUNT, {"token_digest": token_digest})
    if not found:
        raise ApiError(401, "The access token is invalid")
    token_id, app_id, account_id, scopes, expires_at, revoked_at = found[0][:_TOKEN_FIELDS]
    account_values = found[0][_TOKEN_FIELDS:]
    account = None if account_values[0] is None else _account_from(account_values)
    now = utcnow()
    if revoked_at is not None or (expires_at is not None and expires_at <= now):
        raise ApiError(401, "The access token is invalid")
    if account_id is not None and account is None:
        raise ApiError(401, "The access token is invalid")
    if account is not None and account.suspended_at is not None:
        raise ApiError(403, "Your login is currently disabled")
    viewer = Viewer(
        account=account,
        token_id=token_id,
        app_id=app_id,
        scopes=frozenset(scopes.split()),
    )
    if cache is not None:
        cache.put(
            token_digest,
            viewer,
            generation=generation,
            read_at=read_at,
            expires_at=expires_at,
        )
    return viewer


def _check_scope(viewer: Viewer, scope: str | None) -> None:
    if scope is not None and not covers(viewer.scopes, scope):
        raise ApiError(403, "This action is outside the authorized scopes")


async def anyone(request: Request) -> Viewer:
    return await resolve_viewer(request)


def user(scope: str | None = None) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency requiring a logged-in account whose token covers ``scope``."""

    async def dependency(request: Request) -> Viewer:
        viewer = await resolve_viewer(request)
        if viewer.account is None:
            if viewer.token_id is None:
                raise ApiError(401, "The access token is invalid")
            raise ApiError(422, "This method requires an authenticated user")
        _check_scope(viewer, scope)
        return viewer

    return dependency


def app_or_user(scope: str | None = None) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency requiring any valid token (an app's own or a user's) covering ``scope``."""

    async def dependency(request: Request) -> Viewer:
        viewer = await resolve_viewer(request)
        if viewer.token_id is None and viewer.account is None:
            raise ApiError(401, "The access token is invalid")
        _check_scope(viewer, scope)
        return viewer

    return dependency


def moderator(scope: str | None = None) -> Callable[[Request], Awaitable[Viewer]]:
    check_user = user(scope)

    async def dependency(request: Request) -> Viewer:
        viewer = await check_user(request)
        assert viewer.account is not None
        if not viewer.account.is_moderator:
            raise ApiError(403, "This action is not allowed")
        return viewer

    return dependency


def token_age(created_at: dt.datetime) -> float:
    return (utcnow() - created_at).total_seconds()
