"""A table of client addresses shared by the workers of one machine, in a memory-mapped file.

A client's connections land on any worker, so an address learnt as good by one must be known
to all: each worker maps the same file (in ``data_dir``) and reads and writes fixed slots in
it, with no lock and no system call. Each address has one slot (by a stable hash of it),
holding a fingerprint of the address, its standing and when that expires. Two addresses that
share a slot overwrite each other, and a write racing another may be lost: either way an
address is only forgotten early, and its next valid request writes it again.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import time
import zlib
from pathlib import Path

SLOT = struct.Struct("<IIB7x")  # fingerprint, expires at (Unix seconds), standing
# How long a good history lasts without being renewed by a new request.
LIFETIME = 3600


class AddressTable:
    def __init__(self, path: Path, slots: int) -> None:
        self.slots = max(1, slots)
        size = self.slots * SLOT.size
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size != size:
                os.ftruncate(descriptor, size)
            self.memory = mmap.mmap(descriptor, size)
        finally:
            os.close(descriptor)

    def _place(self, address: str) -> tuple[int, int]:
        raw = address.encode()
        fingerprint = zlib.crc32(raw, 0x5BD1E995) or 1
        return (zlib.crc32(raw) % self.slots) * SLOT.size, fingerprint

    def mark(self, address: str, standing: int, now: float | None = None) -> None:
        offset, fingerprint = self._place(address)
        now = time.time() if now is None else now
        held, expires, current = SLOT.unpack_from(self.memory, offset)
        if held == fingerprint and expires > now and current > standing:
            standing = current
        SLOT.pack_into(self.memory, offset, fingerprint, int(now) + LIFETIME, standing)

    def standing(self, address: str, now: float | None = None) -> int:
        offset, fingerprint = self._place(address)
        held, expires, standing = SLOT.unpack_from(self.memory, offset)
        if held != fingerprint or expires <= (time.time() if now is None else now):
            return 0
        return int(standing)

    def forget(self, address: str) -> None:
        offset, fingerprint = self._place(address)
        if SLOT.unpack_from(self.memory, offset)[0] == fingerprint:
            SLOT.pack_into(self.memory, offset, 0, 0, 0)

    def __len__(self) -> int:
        now = time.time()
        return sum(
            1 for held, expires, _ in SLOT.iter_unpack(self.memory) if held and expires > now
        )

    def clear(self) -> None:
        self.memory[:] = bytes(len(self.memory))

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self.memory.close()
