"""``python -m bench.db_reads``: a read of five statements on SQLite, three ways, in one run.

- *stock*: SQLAlchemy's aiosqlite engine as it comes (the baseline): each statement makes four
  trips to the connection's thread (cursor, statement, rows, close), BEGIN and ROLLBACK one
  each;
- *read*: ``Database.read`` (townsquare/db/engine.py): one trip per statement, BEGIN and
  ROLLBACK on the loop's thread;
- *apart*: ``Database.read_apart`` (townsquare/db/reader_threads.py): the whole read on a reader
  thread, one trip there and back.

Each runs on an idle event loop, then on loops kept busy by callbacks that come back every
turn, making each turn 20 ms long (a worker's turns were 50-85 ms long at p90 under
a flood): every trip back to the loop waits for a turn, and a reader thread waits for the
interpreter's lock the loop holds while it works. Eight reads at a time; reports reads/s and
the process's CPU time per read.

``--switch-interval`` sets the interpreter's (``sys.setswitchinterval``) for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from townsquare.db.engine import Database

STATEMENT = text("SELECT id, word FROM words WHERE id > :after ORDER BY id LIMIT 20")
CONCURRENCY = 8
# A busy loop's turn: callbacks that share its length and come back every turn.
BUSY_CALLBACKS = 20


async def five_statements(session: AsyncSession) -> int:
    rows = 0
    for step in range(5):
        rows += len((await session.execute(STATEMENT, {"after": step * 10})).all())
    return rows


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(
    read: Callable[[], Awaitable[int]], seconds: float, turn_ms: float
) -> tuple[float, float]:
    """reads/s and CPU µs per read, with the loop's turns made ``turn_ms`` long (0: idle)."""
    loop = asyncio.get_running_loop()
    running = turn_ms > 0
    share = turn_ms / 1000 / BUSY_CALLBACKS

    def spin() -> None:
        # A callback that works for its share of a turn and comes back on the next one.
        if running:
            until = time.perf_counter() + share
            while time.perf_counter() < until:
                pass
            loop.call_soon(spin)

    for _ in range(BUSY_CALLBACKS if running else 0):
        loop.call_soon(spin)
    started, cpu = time.perf_counter(), _cpu_seconds()
    deadline = started + seconds
    reads = 0

    async def client() -> None:
        nonlocal reads
        while time.perf_counter() < deadline:
            assert await read() == 100
            reads += 1

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    running = False
    return reads / wall, cpu / max(reads, 1) * 1e6


async def main(seconds: float, turns: list[float]) -> None:
    with tempfile.TemporaryDirectory(prefix="townsquare-reads-") as work:
        url = f"sqlite+aiosqlite:///{Path(work) / 'reads.sqlite3'}"
        db = Database(url, pool_size=CONCURRENCY)
        async with db.write() as session:
            await session.execute(text("CREATE TABLE words (id INTEGER PRIMARY KEY, word TEXT)"))
            await session.execute(
                text("INSERT INTO words (word) VALUES (:word)"),
                [{"word": f"word {n}"} for n in range(200)],
            )
        stock = create_async_engine(url, pool_size=CONCURRENCY)
        stock_sessions = async_sessionmaker(stock)

        async def stock_read() -> int:
            async with stock_sessions() as session, session.begin():
                return await five_statements(session)

        async def read() -> int:
            async with db.read() as session:
                return await five_statements(session)

        async def apart() -> int:
            return await db.read_apart(five_statements)

        print(
            f"Reads of five statements, {CONCURRENCY} at a time, {seconds:g} s each way; "
            f"switch interval {sys.getswitchinterval() * 1000:g} ms"
        )
        print("| way | loop's turns | reads/s | CPU µs per read |")
        print("| --- | --- | --- | --- |")
        for turn_ms in turns:
            for name, way in (("stock", stock_read), ("read", read), ("apart", apart)):
                await way()  # connections opened before the clock starts
                rate, cpu = await measure(way, seconds, turn_ms)
                loop = f"{turn_ms:g} ms" if turn_ms else "idle"
                print(f"| {name} | {loop} | {rate:,.0f} | {cpu:,.0f} |")
        await stock.dispose()
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.db_reads", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="Per way and loop.")
    parser.add_argument(
        "--turns", default="0,20", help="The busy loop's turn lengths, ms (0: an idle loop)."
    )
    parser.add_argument("--switch-interval", type=float, default=None, help="ms")
    args = parser.parse_args()
    turns = [float(turn) for turn in args.turns.split(",")]
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval / 1000)
    try:
        import uvloop  # the server's loop when installed (townsquare/cli/serve.py)

        uvloop.run(main(args.seconds, turns))
    except ImportError:  # pragma: no cover
        asyncio.run(main(args.seconds, turns))
