"""Proof-of-work challenges and the passes that solving one earns.

A challenge is stateless: its difficulty, expiry and the client's address prefix are signed
into it, so handing out challenges costs no memory. A solution is a nonce such that
``sha256(challenge + nonce)`` starts with ``difficulty`` zero bits. The pass it earns is signed
the same way, bound to the address prefix, short-lived, and counted by its own rate limit, so
one solve never buys unlimited requests. Each challenge is redeemed at most once.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from townsquare.config import Settings
from townsquare.oauth.signing import secret_key

MAX_DIFFICULTY = 40
MAX_NONCE_LENGTH = 64
MAX_TOKEN_LENGTH = 256
# Networks whose binding is remembered at once.
MAX_BINDINGS = 65_536


@dataclass(frozen=True, slots=True)
class Challenge:
    value: str
    difficulty: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Pass:
    pass_id: str
    effort: int
    expires_at: float


class PassError(Exception):
    """Why a solution earned no pass; the message is shown to the client."""


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solves(challenge: str, nonce: str, difficulty: int) -> bool:
    digest = hashlib.sha256((challenge + nonce).encode()).digest()
    return leading_zero_bits(digest) >= difficulty


def solve(challenge: str, difficulty: int) -> str:
    """Find a nonce by brute force, as a client would (tests and scripted clients use it)."""
    for counter in range(1 << (difficulty + 8)):
        nonce = str(counter)
        if solves(challenge, nonce, difficulty):
            return nonce
    raise RuntimeError("no solution found")  # pragma: no cover - vanishingly unlikely


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class PassIssuer:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        max_redeemed: int = 200_000,
    ) -> None:
        # A key of its own, derived from the instance secret, so a pass can never pass for any
        # other signed value of the instance.
        self._key = hashlib.sha256(
            b"townsquare shield\x00" + secret_key(settings).encode()
        ).digest()
        self.challenge_lifetime = settings.shield_challenge_lifetime
        self.pass_lifetime = settings.shield_pass_lifetime
        self.clock = clock
        self._redeemed: dict[str, float] = {}
        self._bindings: dict[str, str] = {}
        self._max_redeemed = max_redeemed

    def _mac(self, kind: str, value: str) -> str:
        raw = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()
        return _b64(raw[:18])

    def _bind(self, prefix: str) -> str:
        # A flood asks for challenges for the same networks again and again.
        binding = self._bindings.get(prefix)
        if binding is None:
            if len(self._bindings) >= MAX_BINDINGS:
                self._bindings.clear()
            binding = self._bindings[prefix] = self._mac("prefix", prefix)[:10]
        return binding

    def _verified(self, kind: str, token: str) -> list[str] | None:
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        value, dot, signature = token.rpartition(".")
        if not dot or not hmac.compare_digest(signature, self._mac(kind, value)):
            return None
        return value.split(".")

    def challenge(self, prefix: str, difficulty: int) -> Challenge:
        difficulty = max(1, min(MAX_DIFFICULTY, difficulty))
        expires_at = int(self.clock() + self.challenge_lifetime)
        value = f"c1.{secrets.token_urlsafe(12)}.{expires_at}.{difficulty}.{self._bind(prefix)}"
        return Challenge(f"{value}.{self._mac('challenge', value)}", difficulty, expires_at)

    def redeem(self, challenge: str, nonce: str, prefix: str) -> tuple[str, Pass]:
        """The pass (as a token, and what it holds) a correct solution earns."""
        if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
            raise PassError("The nonce must be a string of 1 to 64 characters")
        parts = self._verified("challenge", challenge)
        if parts is None or len(parts) != 5 or parts[0] != "c1":
            raise PassError("The challenge is not one this server issued")
        _, challenge_id, expires, difficulty_text, binding = parts
        now = self.clock()
        if int(expires) < now:
            raise PassError("The challenge has expired")
        if not hmac.compare_digest(binding, self._bind(prefix)):
            raise PassError("The challenge was issued to another network")
        difficulty = int(difficulty_text)
        if not solves(challenge, nonce, difficulty):
            raise PassError("The nonce does not solve the challenge")
        if challenge_id in self._redeemed:
            raise PassError("The challenge has already been used")
        self._remember_redeemed(challenge_id, float(expires), now)
        issued = Pass(secrets.token_urlsafe(9), difficulty, int(now + self.pass_lifetime))
        value = f"p1.{issued.pass_id}.{int(issued.expires_at)}.{issued.effort}.{binding}"
        return f"{value}.{self._mac('pass', value)}", issued

    def check(self, token: str, prefix: str) -> Pass | None:
        """The pass a request carries, if it is genuine, current and from its network."""
        parts = self._verified("pass", token)
        if parts is None or len(parts) != 5 or parts[0] != "p1":
            return None
        _, pass_id, expires, effort, binding = parts
        if int(expires) < self.clock() or not hmac.compare_digest(binding, self._bind(prefix)):
            return None
        return Pass(pass_id, int(effort), float(expires))

    def _remember_redeemed(self, challenge_id: str, expires_at: float, now: float) -> None:
        if len(self._redeemed) >= self._max_redeemed:
            for key in [k for k, until in self._redeemed.items() if until < now]:
                del self._redeemed[key]
            if len(self._redeemed) >= self._max_redeemed:
                raise PassError("Too many passes are being issued; try again shortly")
        self._redeemed[challenge_id] = expires_at


@lru_cache(maxsize=64)
def iso8601(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def challenge_entity(challenge: Challenge) -> dict[str, object]:
    return {
        "challenge": challenge.value,
        "difficulty": challenge.difficulty,
        "algorithm": "sha256",
        "expires_at": iso8601(challenge.expires_at),
    }
