"""Password hashing with argon2id, off the event loop on threads of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Verifying against this when an account does not exist takes as long as a real check, so
# response times do not reveal which usernames exist.
_DECOY = _hasher.hash("decoy password that matches nothing")

# How much lower than the worker's the CPU priority of its hashing threads is (their niceness,
# on Linux). A hash takes tens of milliseconds of CPU by design; while credential stuffing keeps
# every hashing slot busy, the event loops serving everyone else (and the database) come first
# and the sign-ins wait, instead of the other way round. On an idle machine it changes nothing.
HASHING_NICENESS = 10
# Threads per process: the shield's gate (townsquare/shield/hashing.py) bounds how many hashes
# a worker starts at once; this only bounds the threads that run them.
HASHING_THREADS = 4

_threads: tuple[int, ThreadPoolExecutor] | None = None


def _lower_priority() -> None:
    # A thread's own niceness (Linux keeps one per thread); raising it needs no privilege.
    with contextlib.suppress(AttributeError, OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, 0) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(niceness, 19))


def hashing_threads() -> ThreadPoolExecutor:
    """This process's hashing threads (made again in a process forked after they were)."""
    global _threads
    if _threads is None or _threads[0] != os.getpid():
        executor = ThreadPoolExecutor(
            HASHING_THREADS, thread_name_prefix="password-hash", initializer=_lower_priority
        )
        _threads = (os.getpid(), executor)
    return _threads[1]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DECOY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password_off_loop(password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(hashing_threads(), hash_password, password)


async def verify_password_off_loop(password_hash: str | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(hashing_threads(), verify_password, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
