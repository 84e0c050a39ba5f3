"""``python -m bench.attack``: Townsquare under attack, with the shield on and off, in one run.

Seeds a small instance, starts ``townsquare serve --workers 2`` on loopback, calibrates its
capacity (home-timeline requests/s, closed loop), then keeps a fixed set of legitimate clients
busy while each attack scenario runs at 10x and 50x that rate (or with 5,000 connections), and
for a few seconds after it stops. The same scenarios run against the same instance with the
shield switched off. Every request goes to and from 127.0.0.0/8. The table is printed and
written to ``--output``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import queue
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.attack.attacks import AttackResult, AttackSpec, run_attack
from bench.attack.legit import Instance, Recorder, run_legitimate
from bench.attack.report import Phase, Run, breakdown, render
from bench.attack.wire import Connection, request_bytes
from bench.servers import Server, _spawn
from tests.postgres_server import free_port
from townsquare.shield.passes import solve

# The attackers stand for machines of their own too. At the server's priority, all at once,
# they took the cores from it: its workers waited for a core 75-85 % of the attack, and the
# figures measured the kernel's scheduler as much as the shield. At niceness 10, in sessions of
# their own (see run_attack), they get what the server leaves; ``--attackers-niceness 0`` runs
# them as before.
ATTACKERS_NICENESS = 10

RATE_SCENARIOS = ("anon-flood", "stuffing", "search", "pow")
CONNECTION_SCENARIOS = ("slowloris", "slow-post", "streaming")
ALL_SCENARIOS = (*RATE_SCENARIOS, *CONNECTION_SCENARIOS, "all")

SHIELD_OFF = {
    "TOWNSQUARE_SHIELD_ENABLED": "false",
    "TOWNSQUARE_RATE_LIMITS_ENABLED": "false",
    "TOWNSQUARE_SHIELD_CACHE_TTL": "0",
    "TOWNSQUARE_SERVER_HEADER_TIMEOUT": "3600",
    "TOWNSQUARE_SERVER_BODY_TIMEOUT": "3600",
    "TOWNSQUARE_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
}
SHIELD_ON = {
    # So that under-attack mode is seen switching off within a scenario's recovery phase.
    "TOWNSQUARE_SHIELD_ATTACK_QUIET_PERIOD": "10",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.attack", description=__doc__)
    parser.add_argument("--scenarios", default=",".join(ALL_SCENARIOS))
    parser.add_argument("--multipliers", default="10,50", help="Attack rates, x capacity.")
    parser.add_argument(
        "--capacity",
        type=float,
        default=None,
        help="Home-timeline requests/s to take as the capacity instead of measuring it, so "
        "two runs (two versions of the code) face the same attack rates.",
    )
    parser.add_argument("--shield", default="on,off", help="Configurations to run, in order.")
    parser.add_argument("--connections", type=int, default=5_000)
    parser.add_argument("--baseline-seconds", type=float, default=8.0)
    parser.add_argument("--attack-seconds", type=float, default=10.0)
    parser.add_argument("--recovery-seconds", type=float, default=6.0)
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--statuses", type=int, default=3_000)
    parser.add_argument("--processes", type=int, default=2, help="Processes per rate flood.")
    parser.add_argument(
        "--attackers-niceness",
        type=int,
        default=ATTACKERS_NICENESS,
        help="Scheduling priority of the attack processes (0: the server's, so the attack "
        "takes the server's cores as well as its time; 10, the default: they get the cores "
        "the server leaves, as attackers on machines of their own would).",
    )
    parser.add_argument("--output", type=Path, default=Path("bench-attack-results.md"))
    return parser.parse_args()


def seed(data_dir: Path, args: argparse.Namespace) -> list[tuple[str, str]]:
    tokens = data_dir / "seed-tokens.txt"
    command = [str(Path(sys.executable).parent / "townsquare"), "seed", "--fast"]
    command += ["--data-dir", str(data_dir), "--accounts", str(args.accounts)]
    command += ["--statuses", str(args.statuses), "--follows-per-account", "30"]
    command += ["--tokens", "80", "--tokens-file", str(tokens)]
    subprocess.run(command, check=True, timeout=900, stdout=subprocess.DEVNULL)
    return [(line.split()[0], line.split()[1]) for line in tokens.read_text().splitlines()]


def start(data_dir: Path, port: int, env: dict[str, str], log: Path) -> Server:
    environment = {
        "TOWNSQUARE_DOMAIN": f"127.0.0.1:{port}",
        "TOWNSQUARE_LOG_LEVEL": "warning",
        **env,
    }
    command = [str(Path(sys.executable).parent / "townsquare"), "serve", "--port", str(port)]
    command += ["--workers", "2", "--data-dir", str(data_dir)]
    return _spawn("townsquare", command, environment, port, log)


async def fetch_json(port: int, method: str, path: str, token: str | None = None) -> Any:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = b""
    if method == "POST":
        headers["Content-Type"] = "application/json"
        body = orjson.dumps({"client_name": "bench", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"})
    connection = Connection("127.0.0.1", port, "127.0.0.1")
    answer = await connection.send(request_bytes(method, path, headers, body))
    connection.close()
    return orjson.loads(answer.body)


async def describe_instance(port: int, users: list[tuple[str, str]]) -> Instance:
    token = users[0][1]
    statuses = await fetch_json(port, "GET", "/api/v1/timelines/public?local=true&limit=40", token)
    found = {
        word.lower()
        for status in statuses
        for word in re.findall(r"[A-Za-z]{4,}", re.sub(r"<[^>]*>", " ", status["content"]))
    }
    words = sorted(found | {"town", "square", "hello", "world"})
    return Instance(
        host="127.0.0.1",
        port=port,
        tokens=[token for _, token in users[:20]],
        account_ids=sorted({status["account"]["id"] for status in statuses}),
        status_ids=[status["id"] for status in statuses],
        words=words,
    )


async def calibrate(instance: Instance, tokens: list[str], seconds: float = 4.0) -> float:
    """Home-timeline requests per second, 32 clients in a closed loop.

    The clients use ``tokens``, not the legitimate users' own: a closed loop makes a token
    look like a flood's, and the shield would remember it so while the run begins."""
    done = 0
    end = time.monotonic() + seconds

    async def client(n: int) -> None:
        nonlocal done
        # Each from its own /24, like the legitimate users: the connection layer's per-network
        # connection rate is for floods, not for this closed loop.
        connection = Connection(instance.host, instance.port, f"127.0.{64 + n}.1")
        raw = request_bytes(
            "GET",
            "/api/v1/timelines/home?limit=20",
            {"Authorization": f"Bearer {tokens[n % len(tokens)]}"},
        )
        while time.monotonic() < end:
            answer = await connection.send(raw)
            if answer.status == 200:
                done += 1
            else:
                # Refused (an overloaded worker turns away addresses it does not know yet):
                # back off a little, as a client honouring Retry-After would, instead of
                # spinning on refusals.
                await asyncio.sleep(0.1)
        connection.close()

    started = time.monotonic()
    await asyncio.gather(*(client(n) for n in range(32)))
    return done / (time.monotonic() - started)


class ServerMeter:
    """CPU (percent of one core), time spent waiting for a core, and resident memory of the
    server's processes."""

    def __init__(self, server: Server) -> None:
        parent = psutil.Process(server.process.pid)
        self.processes = [parent, *parent.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def cpu_wait_seconds(self) -> float:
        """Seconds the server's processes were ready to run but waited for a core (the
        scheduler's run-queue time, from /proc/PID/schedstat; 0 where there is none): on
        this machine, mostly time the attackers' and clients' processes held the cores."""
        total = 0.0
        for process in self.processes:
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{process.pid}/schedstat").read_text().split()
                total += int(fields[1]) / 1e9
        return total

    def mark(self) -> tuple[float, float, float]:
        """When, how much CPU and how much waiting for a core: where a :meth:`phase` begins."""
        return time.monotonic(), self.cpu_seconds(), self.cpu_wait_seconds()

    def phase(self, mark: tuple[float, float, float], rss_mb: float) -> Phase:
        """The phase from ``mark`` until now, with ``rss_mb`` as its memory."""
        began, cpu, waited = mark
        return Phase(
            began,
            time.monotonic(),
            self.cpu_seconds() - cpu,
            rss_mb,
            self.cpu_wait_seconds() - waited,
        )

    def rss_mb(self) -> float:
        total = 0
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total / 2**20


async def run_attack_processes(specs: list[AttackSpec]) -> AttackResult:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=run_attack, args=(spec, results)) for spec in specs]
    for process in processes:
        process.start()
    merged: dict[str, AttackResult] = {}
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + max(spec.duration for spec in specs) + 60
    for _ in processes:
        try:
            wait = max(1.0, deadline - time.monotonic())
            result: AttackResult = await loop.run_in_executor(None, results.get, True, wait)
        except queue.Empty:
            print("an attack process did not report in time", file=sys.stderr)
            break
        merged.setdefault(result.scenario, AttackResult(result.scenario)).merge(result)
    for process in processes:
        await loop.run_in_executor(None, process.join, 10)
        if process.is_alive():
            process.kill()
    total = AttackResult("+".join(sorted(merged)))
    for result in merged.values():
        total.merge(result)
    return total


def attack_specs(
    scenario: str,
    multiplier: int,
    capacity: float,
    run: int,
    context: dict[str, Any],
    args: argparse.Namespace,
) -> list[AttackSpec]:
    rate = capacity * multiplier
    common = {
        "run": run,
        "host": "127.0.0.1",
        "port": context["port"],
        "duration": args.attack_seconds,
        "client_id": context["client_id"],
        "client_secret": context["client_secret"],
        "usernames": context["usernames"],
        "words": context["words"],
        "tokens": context["attacker_tokens"],
        "niceness": args.attackers_niceness,
    }
    if scenario in CONNECTION_SCENARIOS:
        return [AttackSpec(scenario=scenario, offset=0, connections=args.connections, **common)]
    if scenario == "all":
        shares = {"anon-flood": 0.4, "stuffing": 0.2, "search": 0.2, "pow": 0.2}
        specs = [
            AttackSpec(scenario=name, offset=4096 * i, rate=rate * share, **common)
            for i, (name, share) in enumerate(shares.items())
        ]
        specs += [
            AttackSpec(
                scenario=name, offset=20_000 + 4096 * i, connections=args.connections // 2, **common
            )
            for i, name in enumerate(("slowloris", "streaming"))
        ]
        return specs
    share = rate / args.processes
    return [
        AttackSpec(scenario=scenario, offset=8192 * p, rate=share, **common)
        for p in range(args.processes)
    ]


async def run_configuration(
    name: str,
    env: dict[str, str],
    data_dir: Path,
    users: list[tuple[str, str]],
    args: argparse.Namespace,
    capacity: float | None,
    first_run: int,
) -> tuple[list[Run], float]:
    port = free_port()
    server = start(data_dir, port, env, data_dir / f"server-{name}.log")
    try:
        instance = await describe_instance(port, users)
        # The closed loop runs even when the capacity is given: it also warms the server up
        # (its caches, connections and code paths), so the baseline compared against is a
        # warm server's, as it is when the capacity is measured.
        measured = await calibrate(instance, [token for _, token in users[20:52]])
        if capacity is None:
            capacity = measured
            print(f"capacity: {capacity:,.0f} home-timeline requests/s", flush=True)
        # Let the workers finish what the closed loop left them before the baseline.
        await asyncio.sleep(2.0)
        app = await fetch_json(port, "POST", "/api/v1/apps")
        context = {
            "port": port,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "usernames": [username for username, _ in users],
            "words": instance.words,
            "attacker_tokens": [token for _, token in users[60:80]],
        }
        meter = ServerMeter(server)
        recorder = Recorder()
        stop = asyncio.Event()
        solver = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
        # Started before the baseline, as a browser's worker is loaded with its page: the
        # first puzzle must not wait for a process to start and import.
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(solver, solve, "warm-up", 1) for _ in "ab"))
        legit = asyncio.create_task(run_legitimate(instance, recorder, solver, stop))
        runs: list[Run] = []
        try:
            mark = meter.mark()
            await asyncio.sleep(args.baseline_seconds)
            baseline = meter.phase(mark, meter.rss_mb())
            runs.append(Run(name, "none", 0, baseline, None, None, os.getloadavg()[0]))
            run_number = first_run
            for scenario in args.scenarios.split(","):
                multipliers = [0] if scenario in CONNECTION_SCENARIOS else args.multipliers
                for multiplier in multipliers:
                    specs = attack_specs(scenario, multiplier, capacity, run_number, context, args)
                    run_number += 1
                    print(f"[{name}] {scenario} x{multiplier or '-'} ...", flush=True)
                    mark = meter.mark()
                    peak_rss = meter.rss_mb()
                    attacking = asyncio.create_task(run_attack_processes(specs))
                    while not attacking.done():
                        await asyncio.sleep(0.5)
                        peak_rss = max(peak_rss, meter.rss_mb())
                    result = attacking.result()
                    print(
                        f"[{name}] {scenario}: attack answers {dict(result.statuses.most_common())}"
                        f", no answer {result.errors}, cut off {result.cut_off}",
                        file=sys.stderr,
                        flush=True,
                    )
                    attack = meter.phase(mark, peak_rss)
                    await asyncio.sleep(args.recovery_seconds)
                    recovery = Phase(attack.end, time.monotonic(), 0.0, meter.rss_mb())
                    runs.append(
                        Run(
                            name, scenario, multiplier, attack, recovery, result, os.getloadavg()[0]
                        )
                    )
        finally:
            stop.set()
            await legit
            solver.shutdown(cancel_futures=True)
        for run in runs:
            run.attach(recorder.samples, baseline=runs[0])
        print(
            breakdown(runs, {name: recorder.samples}, {name: recorder.lags}),
            file=sys.stderr,
            flush=True,
        )
        return runs, capacity
    finally:
        server.stop()


# The legitimate clients stand for people on machines of their own. Here they share two cores
# with the server and the attackers, and a saturated machine ran their event loop 60-520 ms
# late at p99 (all at once), which every latency they measured included. They run a few
# steps above the server and the attackers; the report still gives how late their loop ran.
CLIENTS_NICENESS = -5


async def main() -> None:
    args = parse_args()
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, CLIENTS_NICENESS)
    args.multipliers = [int(m) for m in args.multipliers.split(",")]
    with tempfile.TemporaryDirectory(prefix="townsquare-attack-") as work:
        data_dir = Path(work)
        print("seeding ...", flush=True)
        users = seed(data_dir, args)
        all_runs: list[Run] = []
        capacity: float | None = args.capacity
        first_run = 0
        for name in args.shield.split(","):
            env = SHIELD_ON if name == "on" else SHIELD_OFF
            runs, capacity = await run_configuration(
                name, env, data_dir, users, args, capacity, first_run
            )
            first_run += 16
            all_runs.extend(runs)
        assert capacity is not None
        command = "python -m bench.attack " + " ".join(sys.argv[1:])
        header = (
            f"`{command.strip()}` on {platform.platform()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; capacity {capacity:,.0f} home-timeline "
            + (
                "requests/s (given, not measured)."
                if args.capacity
                else "requests/s (closed loop, 32 clients)."
            )
            + f" Attack processes at niceness {args.attackers_niceness}."
        )
        table = render(all_runs, header)
        print(table)
        args.output.write_text(table)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(main())
