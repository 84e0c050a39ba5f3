"""The reads bench runs its three ways on an idle and a busy loop and prints its table."""

from __future__ import annotations

import pytest

from bench.db_reads import main


async def test_the_reads_bench_prints_a_row_for_each_way_and_loop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await main(0.2, [0, 20])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    ways = [row.split("|")[1].strip() for row in rows[2:]]
    assert ways == ["stock", "read", "apart"] * 2
    # Figures, whatever they are on this machine: reads/s and CPU µs per read.
    assert all(float(row.split("|")[3].replace(",", "")) >= 0 for row in rows[2:])
