"""Password attempts counted per account before the password hash is computed.

The rate limits in front of the app count logins per address and per network; a credential
stuffing run spread over many addresses against one account is only seen here, once the login
name is known. The count is keyed by the account when the name matches one and by the name
itself when it does not, and both answer alike, so the limit tells nobody whether an account
exists. It is checked before the hash, so refused attempts cost a counter increment.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncIterator

from townsquare.shield.hashing import HashingBusy
from townsquare.shield.state import ShieldState, rate

__all__ = ["HashingBusy", "login_retry_after", "password_check"]
from townsquare.state import AppState


async def login_retry_after(state: AppState, login: str, account_id: int | None) -> int | None:
    """None when this attempt may go on to the password check, else seconds to wait."""
    shield = state.extras.get("shield")
    if not isinstance(shield, ShieldState) or not state.settings.rate_limits_enabled:
        return None
    name = login.strip().lower()
    if account_id is not None:
        key = f"login_account:{account_id}"
    else:
        key = "login_account:?" + hashlib.sha256(name.encode()).hexdigest()[:32]
    count, period = rate(state.settings.rate_limit_login_account)
    now = time.time()
    verdict = await shield.counters.acquire(key, count, period)
    if verdict.allowed:
        return None
    limited = shield.metrics.rate_limited
    limited["login_account"] = limited.get("login_account", 0) + 1
    retry_after = verdict.retry_after(now)
    shield.limited_logins.refuse(name, now + retry_after)
    return retry_after


@contextlib.asynccontextmanager
async def password_check(state: AppState) -> AsyncIterator[None]:
    """Hold a hashing slot of this worker for one password check (raises HashingBusy)."""
    shield = state.extras.get("shield")
    if not isinstance(shield, ShieldState) or not shield.settings.shield_enabled:
        yield
        return
    async with shield.hash_gate.slot():
        yield
