"""Secrets: minting them, and storing only their digests."""

from __future__ import annotations

import hashlib
import secrets


def mint_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
