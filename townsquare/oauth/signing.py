"""The instance's signing key, and values signed with it (the login form's CSRF cookie).

When ``settings.secret_key`` is empty a key is generated once and kept in ``data_dir/secret_key``
so every worker process (and every restart) signs with the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from townsquare.config import Settings

KEY_FILE = "secret_key"
_loaded: dict[Path, str] = {}


def _key_from_file(path: Path) -> str:
    cached = _loaded.get(path)
    if cached is not None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when two workers start together, exactly one writes and both read its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
    else:
        key = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    if not key:
        raise RuntimeError(f"{path} is empty; delete it or set TOWNSQUARE_SECRET_KEY")
    _loaded[path] = key
    return key


def secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    return _key_from_file(settings.data_dir / KEY_FILE)


def _mac(settings: Settings, purpose: str, value: str) -> str:
    key = secret_key(settings).encode()
    raw = hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(settings: Settings, purpose: str, value: str) -> str:
    """``value.signature``; the purpose keeps a value signed for one use from passing as another."""
    return f"{value}.{_mac(settings, purpose, value)}"


def unsign(settings: Settings, purpose: str, signed: str) -> str | None:
    """The value if the signature is good, else None."""
    value, dot, signature = signed.rpartition(".")
    if not dot or not value:
        return None
    if not hmac.compare_digest(signature, _mac(settings, purpose, value)):
        return None
    return value


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)
