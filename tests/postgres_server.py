"""A throwaway PostgreSQL server for tests and benchmarks, started from Debian's binaries.

The server lives in a temporary directory, listens on a free loopback port (never the machine's
own 5432) and a private unix socket, and runs with fsync off: durability is not under test here,
speed is. When it cannot start, :class:`PostgresError` says why; callers must not skip silently.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")

# Settings that make a test server fast; never use them for data that matters.
FAST_UNSAFE_OPTIONS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
    "shared_buffers=128MB",
)
# The same server as a deployment would run it: every commit is on disk before it is answered.
# Benchmarks use these, so that figures for writes compare with SQLite's (synchronous=FULL).
DURABLE_OPTIONS = (
    "max_connections=300",
    "shared_buffers=128MB",
)


class PostgresError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def postgres_bin_dir() -> Path:
    """The newest Debian PostgreSQL installation (``/usr/lib/postgresql/<version>/bin``)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parent.parent.name.split(".")[0]),
    )
    if not found:
        on_path = shutil.which("pg_ctl")
        if on_path is None:
            raise PostgresError(
                "PostgreSQL is not installed: run scripts/install-system-deps (make system-deps)"
            )
        return Path(on_path).parent
    return Path(found[-1]).parent


class PostgresServer:
    """One running server. ``start()`` then ``create_database(name)``; ``stop()`` at the end."""

    def __init__(self, *, options: tuple[str, ...] = FAST_UNSAFE_OPTIONS) -> None:
        self.bin_dir = postgres_bin_dir()
        self.options = options
        self.port = free_port()
        # initdb refuses to run as root; then the server runs as the packaged `postgres` user,
        # which must be able to reach its directory (so not under a private TMPDIR).
        self.run_as: str | None = "postgres" if os.geteuid() == 0 else None
        parent = "/tmp" if self.run_as and Path("/tmp").is_dir() else None
        self.root = Path(tempfile.mkdtemp(prefix="townsquare-pg-", dir=parent))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_file = self.root / "server.log"
        self.superuser = "postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        result = subprocess.run(
            command,
            user=self.run_as,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise PostgresError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n{log}"
            )

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if self.run_as is not None:
            owner = pwd.getpwnam(self.run_as)
            for path in (self.root, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            self.superuser,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        settings = [
            f"port={self.port}",
            "listen_addresses=127.0.0.1",
            f"unix_socket_directories={self.socket_dir}",
            *self.options,
        ]
        server_options = " ".join(f"-c {setting}" for setting in settings)
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            server_options,
        )

    def stop(self) -> None:
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    async def execute(self, sql: str, database: str = "postgres") -> None:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user=self.superuser, database=database
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def create_database(self, name: str, template: str | None = None) -> str:
        suffix = f" TEMPLATE {template}" if template else ""
        await self.execute(f"DROP DATABASE IF EXISTS {name}")
        await self.execute(f"CREATE DATABASE {name}{suffix}")
        return self.url(name)


class TableReset:
    """Empties every application table between tests through one long-lived connection.

    Sequences start again from 1, as in a new database.

    The connection lives on its own event loop in a thread, so synchronous fixtures can call
    :meth:`reset` whatever loop the tests run on.
    """

    def __init__(self, server: PostgresServer, database: str) -> None:
        self.server = server
        self.database = database
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._connection: asyncpg.Connection = self._call(self._connect())
        self._statement = self._call(self._truncate_statement())

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    async def _connect(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(
            host="127.0.0.1",
            port=self.server.port,
            user=self.server.superuser,
            database=self.database,
        )
        # A test that leaked a connection holding locks makes the next reset fail, not hang.
        await connection.execute("SET lock_timeout = '10s'")
        return connection

    async def _truncate_statement(self) -> str:
        # DELETE, not TRUNCATE: on tables holding a few rows it costs almost nothing, while
        # TRUNCATE rewrites every table and index file (a quarter of a second per test).
        # The replica role skips foreign-key triggers, so the order of the tables is free.
        tables = await self._connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version' ORDER BY tablename"
        )
        sequences = await self._connection.fetch(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
        )
        statements = ["SET LOCAL session_replication_role = replica"]
        statements += [f'DELETE FROM "{row["tablename"]}"' for row in tables]
        statements += [f"SELECT setval('\"{row['sequencename']}\"', 1, false)" for row in sequences]
        return "BEGIN; " + "; ".join(statements) + "; COMMIT"

    def reset(self) -> None:
        self._call(self._connection.execute(self._statement))

    def close(self) -> None:
        try:
            self._call(self._connection.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
