"""Accounts: creating, finding and changing them. No web framework here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.accounts.passwords import (
    hash_password,
    verify_password_off_loop,
)
from townsquare.api.errors import ApiError
from townsquare.ids import new_id

USERNAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RESERVED = frozenset(
    {
        "admin",
        "root",
        "api",
        "oauth",
        "settings",
        "about",
        "web",
        "www",
        "support",
        "help",
        "townsquare",
        "moderator",
        "system",
        "null",
    }
)
MIN_PASSWORD = 8
MAX_PASSWORD = 256


@dataclass(frozen=True)
class NewAccount:
    username: str
    email: str
    password: str
    display_name: str = ""
    locale: str = "en"


async def find_by_username(session: AsyncSession, username: str) -> Account | None:
    return await session.scalar(select(Account).where(Account.username_key == username.lower()))


async def find_by_email(session: AsyncSession, email: str) -> Account | None:
    return await session.scalar(select(Account).where(func.lower(Account.email) == email.lower()))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a sign-up, with Mastodon's error code for it (``ERR_TAKEN`` ...)."""

    field: str
    code: str
    description: str


def account_problems(new: NewAccount, *, reserved_ok: bool = False) -> list[Problem]:
    """What is wrong with a sign-up, judged without the database."""
    problems: list[Problem] = []
    if not USERNAME.match(new.username):
        problems.append(
            Problem("username", "ERR_INVALID", "must be 1-30 letters, digits or underscores")
        )
    elif new.username.lower() in RESERVED and not reserved_ok:
        problems.append(Problem("username", "ERR_RESERVED", "is reserved"))
    if not EMAIL.match(new.email) or len(new.email) > 320:
        problems.append(Problem("email", "ERR_INVALID", "is invalid"))
    if len(new.password) < MIN_PASSWORD:
        problems.append(
            Problem("password", "ERR_TOO_SHORT", f"is too short (minimum {MIN_PASSWORD})")
        )
    elif len(new.password) > MAX_PASSWORD:
        problems.append(
            Problem("password", "ERR_TOO_LONG", f"is too long (maximum {MAX_PASSWORD})")
        )
    return problems


def validation_error(problems: list[Problem]) -> ApiError:
    """A 422 in Mastodon's sign-up shape: a sentence, and ``details`` per field."""
    details: dict[str, list[dict[str, str]]] = {}
    for problem in problems:
        details.setdefault(problem.field, []).append(
            {"error": problem.code, "description": problem.description}
        )
    message = ", ".join(f"{p.field} {p.description}" for p in problems)
    return ApiError(422, f"Validation failed: {message}", details=details)


async def create_account(
    session: AsyncSession,
    new: NewAccount,
    *,
    role: str = "user",
    reserved_ok: bool = False,
    password_hash: str | None = None,
) -> Account:
    """Create an account, or raise a 422 naming what is wrong (nothing is written then).

    ``password_hash`` lets callers hash the password before opening the transaction, so the
    slow hash does not hold the database's writer.
    """
    problems = account_problems(new, reserved_ok=reserved_ok)
    if not problems:
        if await find_by_username(session, new.username) is not None:
            problems.append(Problem("username", "ERR_TAKEN", "is taken"))
        if await find_by_email(session, new.email) is not None:
            problems.append(Problem("email", "ERR_TAKEN", "is taken"))
    if problems:
        raise validation_error(problems)
    account = Account(
        id=new_id(),
        username=new.username,
        username_key=new.username.lower(),
        email=new.email,
        password_hash=password_hash or hash_password(new.password),
        display_name=new.display_name[:100],
        locale=new.locale,
        role=role,
        fields=[],
    )
    session.add(account)
    await session.flush()
    return account


async def find_login(session: AsyncSession, login: str) -> Account | None:
    """The account a login form or password grant names, by email or by username."""
    login = login.strip()
    if not login or len(login) > 320:
        return None
    if "@" in login:
        return await find_by_email(session, login)
    return await find_by_username(session, login)


async def password_matches(account: Account | None, password: str) -> bool:
    """Check the password off the event loop. A missing account is checked against a decoy hash,
    so the answer takes as long whether or not the account exists."""
    too_long = len(password) > MAX_PASSWORD
    stored = account.password_hash if account is not None and not too_long else None
    return await verify_password_off_loop(stored, password[:MAX_PASSWORD])


async def can_log_in(account: Account | None, password: str) -> bool:
    """Whether these credentials open a session; suspended accounts cannot log in."""
    matches = await password_matches(account, password)
    return (
        matches
        and account is not None
        and account.suspended_at is None
        and account.disabled_at is None
    )
