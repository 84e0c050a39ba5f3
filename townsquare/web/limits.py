"""The shield's per-token limits on posting and uploads, applied to posts sent from the web.

The rate-limit middleware counts API requests by their bearer token; a web session is a token
too, so its posts are counted under the same key and share one allowance with the API.
"""

from __future__ import annotations

import hashlib
import time

from starlette.requests import Request

from townsquare.api.errors import ApiError
from townsquare.shield.state import ShieldState, rate
from townsquare.state import app_state
from townsquare.web.sessions import SESSION_COOKIE


async def spend(request: Request, cost_class: str, *, times: int = 1) -> None:
    """Count ``times`` hits of ``cost_class`` (``posting`` or ``media``) for this session, or
    refuse with 429 and ``Retry-After`` once its allowance is used up."""
    state = app_state(request)
    shield = state.extras.get("shield")
    raw = request.cookies.get(SESSION_COOKIE)
    if not state.settings.rate_limits_enabled or not isinstance(shield, ShieldState) or not raw:
        return
    amount, period = rate(getattr(state.settings, f"rate_limit_{cost_class}"))
    key = f"{cost_class}:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"
    for _ in range(times):
        verdict = await shield.counters.acquire(key, amount, period)
        if not verdict.allowed:
            wait = verdict.retry_after(time.time())
            minutes = max(1, round(wait / 60))
            raise ApiError(
                429,
                f"You have reached the limit of {amount} for now; try again in about "
                f"{minutes} minute{'s' if minutes != 1 else ''}",
                headers={"Retry-After": str(wait)},
            )
