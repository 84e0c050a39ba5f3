"""Failover drills: a workload runs, something is killed with ``kill -9``, and the clients'
view is reported, together with whether two PostgreSQL members ever accepted writes at once.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from townsquare.cluster.layout import POSTGRES_PORT, Node
from townsquare.cluster.nodes import ClusterError, LocalCluster, wait_until
from townsquare.cluster.workload import Outcome, Workload, create_drill_accounts

# Polling each member's pg_is_in_recovery() this often looks for a second primary.
SPLIT_BRAIN_POLL = 0.1
# Gaps between acknowledged writes shorter than this are ordinary jitter, not an outage.
OUTAGE_THRESHOLD = 1.0
# Writes in flight at the kill are answered (or not) within this many seconds.
KILL_EFFECT = 5.0


@dataclass
class DrillPlan:
    warmup: float = 5.0
    after: float = 35.0
    writes_per_second: float = 5.0
    reads_per_second: float = 10.0
    streams: int = 4
    accounts: int = 8
    settle_timeout: float = 120.0


@dataclass
class DrillReport:
    scenario: str
    killed: str
    writes_resumed_after: float
    longest_write_gap: float
    posts_sent: int
    writes_acknowledged: int
    client_errors_writes: int
    client_errors_reads: int
    acknowledged_writes_missing: int
    duplicate_posts: int
    reads_served_during_outage: int
    reads_served: int
    stream_reconnects: int
    stream_events: int
    split_brain_samples: int
    most_primaries_at_once: int
    membership_samples: int
    longest_unwatched: float
    unfinished_posts: int
    notes: list[str] = field(default_factory=list)
    errors_by_kind: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def passed(self) -> bool:
        return self.acknowledged_writes_missing == 0 and self.split_brain_samples == 0


class PrimaryWatch:
    """Asks every PostgreSQL member, together and over and over, whether it takes writes."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.members = cluster.layout.of_role("postgres")
        self.samples = 0
        self.split_brain = 0
        self.most_primaries = 0
        self.primaries_seen: set[str] = set()
        self._connections: dict[str, Any] = {}
        # The longest time between two complete rounds of questions: a split brain shorter
        # than this could go unseen.
        self.longest_unwatched = 0.0
        self._last_sample: float | None = None

    async def _ask(self, node: Node) -> bool | None:
        connection = self._connections.get(node.name)
        try:
            if connection is None or connection.is_closed():
                connection = await asyncpg.connect(
                    host=node.address,
                    port=POSTGRES_PORT,
                    user="postgres",
                    database="postgres",
                    timeout=0.5,
                )
                self._connections[node.name] = connection
            in_recovery = await connection.fetchval("SELECT pg_is_in_recovery()", timeout=0.5)
            return not in_recovery
        except Exception:
            # Whatever went wrong, this member did not say it takes writes; the watch goes on.
            stale = self._connections.pop(node.name, None)
            if stale is not None:
                stale.terminate()
            return None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            answers = await asyncio.gather(*(self._ask(node) for node in self.members))
            primaries = [node.name for node, yes in zip(self.members, answers, strict=True) if yes]
            self.samples += 1
            now = time.monotonic()
            if self._last_sample is not None:
                self.longest_unwatched = max(self.longest_unwatched, now - self._last_sample)
            self._last_sample = now
            self.primaries_seen.update(primaries)
            self.most_primaries = max(self.most_primaries, len(primaries))
            if len(primaries) > 1:
                self.split_brain += 1
            await asyncio.sleep(SPLIT_BRAIN_POLL)

    def start(self) -> None:
        """Polls from a thread of its own, so a busy workload cannot slow the polling down."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._poll(),), daemon=True)
        self._thread.start()

    async def _poll(self) -> None:
        await self._run()
        for connection in self._connections.values():
            connection.terminate()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)


@dataclass
class Scenario:
    name: str
    summary: str
    act: Callable[[LocalCluster], str]
    recover: Callable[[LocalCluster, str], None]


def _start_again(cluster: LocalCluster, killed: str) -> None:
    cluster.start_node(killed)


def _nothing(_cluster: LocalCluster, _killed: str) -> None:
    return None


def _primary(cluster: LocalCluster) -> Node:
    primary = cluster.primary()
    if primary is None:
        raise ClusterError("no PostgreSQL primary to start the drill from")
    return primary


def kill_primary_node(cluster: LocalCluster) -> str:
    primary = _primary(cluster)
    cluster.kill_node(primary)
    return primary.name


def kill_primary_postmaster(cluster: LocalCluster) -> str:
    primary = _primary(cluster)
    cluster.kill_postmaster(primary)
    return f"{primary.name} postmaster"


def kill_app_node(cluster: LocalCluster) -> str:
    node = cluster.layout.of_role("app")[0]
    cluster.kill_node(node)
    return node.name


def kill_redis_master(cluster: LocalCluster) -> str:
    master = cluster.redis_master()
    for node in cluster.layout.of_role("redis"):
        if node.address == master:
            cluster.kill_node(node)
            return node.name
    raise ClusterError("no Redis master to kill")


def kill_etcd_member(cluster: LocalCluster) -> str:
    node = cluster.etcd_leader() or cluster.layout.of_role("etcd")[0]
    cluster.kill_node(node)
    return node.name


def kill_standby(cluster: LocalCluster) -> str:
    primary = _primary(cluster)
    standby = next(node for node in cluster.layout.of_role("postgres") if node != primary)
    cluster.kill_node(standby)
    return standby.name


def kill_primary_and_rejoin(cluster: LocalCluster) -> str:
    """The primary's node dies; once another member has taken over, the old one comes back."""
    old = kill_primary_node(cluster)
    wait_until(
        "a new primary",
        lambda: (primary := cluster.primary()) is not None and primary.name != old,
        timeout=90,
    )
    cluster.start_node(old)
    return f"{old} (restarted after failover)"


def _rejoined(cluster: LocalCluster, killed: str) -> None:
    return None


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "primary-node",
            "the PostgreSQL primary's whole node (Patroni and PostgreSQL) dies",
            kill_primary_node,
            _start_again,
        ),
        Scenario(
            "primary-postmaster",
            "only the primary's postmaster dies; Patroni stays",
            kill_primary_postmaster,
            _nothing,
        ),
        Scenario("app-node", "one app node (all its workers) dies", kill_app_node, _start_again),
        Scenario("redis", "the Redis master dies", kill_redis_master, _start_again),
        Scenario("etcd-member", "the etcd leader dies", kill_etcd_member, _start_again),
        Scenario("standby", "a synchronous standby's node dies", kill_standby, _start_again),
        Scenario(
            "rejoin",
            "the primary's node dies, then comes back and rejoins as a standby",
            kill_primary_and_rejoin,
            _rejoined,
        ),
    )
}


def _outage(outcome: Outcome, killed_at: float) -> tuple[float, float, float]:
    """(seconds from the kill until writes were acknowledged again, longest gap between
    acknowledged writes, end of that outage), measured on acknowledgement times.

    The outage is the longest gap caused by the kill: one in progress at the kill or starting
    within KILL_EFFECT seconds after it. Writes "resumed" at its end. A gap shorter than
    OUTAGE_THRESHOLD is ordinary jitter: writes never stopped.
    """
    acked = sorted(ack.acked_at for ack in outcome.acked)
    longest = 0.0
    outage = (0.0, killed_at)  # (length, end)
    for previous, moment in itertools.pairwise(acked):
        gap = moment - previous
        longest = max(longest, gap)
        caused = moment > killed_at and previous <= killed_at + KILL_EFFECT
        if caused and gap > outage[0]:
            outage = (gap, moment)
    if outage[0] < OUTAGE_THRESHOLD:
        return 0.0, longest, killed_at
    return max(0.0, outage[1] - killed_at), longest, outage[1]


async def _missing_and_duplicates(database_url: str, outcome: Outcome) -> tuple[int, int]:
    """Acknowledged posts not in the database, and posts stored more than once."""
    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url, timeout=10)
    try:
        ids = [int(ack.status_id) for ack in outcome.acked]
        found = await connection.fetch("SELECT id FROM statuses WHERE id = ANY($1::bigint[])", ids)
        keys = [f"drill post {ack.key}" for ack in outcome.acked]
        duplicates = await connection.fetchval(
            "SELECT count(*) FROM (SELECT text FROM statuses WHERE text = ANY($1::text[]) "
            "GROUP BY text HAVING count(*) > 1) AS repeated",
            keys,
        )
    finally:
        await connection.close()
    return len(set(ids) - {row["id"] for row in found}), int(duplicates or 0)


async def run_drill(
    cluster: LocalCluster, scenario: Scenario, plan: DrillPlan, echo: Callable[[str], None]
) -> DrillReport:
    await asyncio.to_thread(cluster.wait_healthy)
    tag = uuid.uuid4().hex[:8]
    tokens = await create_drill_accounts(cluster.layout.write_url, plan.accounts, tag)
    workload = Workload(
        cluster.layout.base_url,
        tokens,
        writes_per_second=plan.writes_per_second,
        reads_per_second=plan.reads_per_second,
        streams=plan.streams,
    )
    watch = PrimaryWatch(cluster)
    watch.start()
    running = asyncio.create_task(workload.run(plan.warmup + plan.after))
    await asyncio.sleep(plan.warmup)
    killed_at = time.monotonic()
    killed = await asyncio.to_thread(scenario.act, cluster)
    echo(f"killed {killed} at +{plan.warmup:.0f} s; workload continues for {plan.after:.0f} s")
    await running
    await workload.finish(plan.settle_timeout)
    await asyncio.to_thread(scenario.recover, cluster, killed)
    await asyncio.to_thread(cluster.wait_healthy, plan.settle_timeout)
    await asyncio.to_thread(watch.stop)

    outcome = workload.outcome
    resumed, longest, outage_end = _outage(outcome, killed_at)
    missing, duplicates = await _missing_and_duplicates(cluster.layout.write_url, outcome)
    served_in_outage = sum(1 for t in outcome.reads_ok if killed_at <= t <= outage_end)
    kinds = Counter(
        [f"post: {problem[:40]}" for _, problem in outcome.post_failures]
        + [f"read: {problem[:40]}" for _, problem in outcome.read_failures]
    )
    notes = []
    if len(watch.primaries_seen) > 1:
        notes.append(f"primaries seen: {', '.join(sorted(watch.primaries_seen))}")
    return DrillReport(
        scenario=scenario.name,
        killed=killed,
        writes_resumed_after=round(resumed, 2),
        longest_write_gap=round(longest, 2),
        posts_sent=outcome.posts_sent,
        writes_acknowledged=len(outcome.acked),
        client_errors_writes=len(outcome.post_failures),
        client_errors_reads=len(outcome.read_failures),
        acknowledged_writes_missing=missing,
        duplicate_posts=duplicates,
        reads_served_during_outage=served_in_outage,
        reads_served=len(outcome.reads_ok),
        stream_reconnects=len(outcome.stream_drops),
        stream_events=outcome.stream_events,
        split_brain_samples=watch.split_brain,
        most_primaries_at_once=watch.most_primaries,
        membership_samples=watch.samples,
        longest_unwatched=round(watch.longest_unwatched, 2),
        unfinished_posts=outcome.unfinished_posts,
        notes=notes,
        errors_by_kind=dict(kinds.most_common(8)),
    )


def summarise(reports: list[DrillReport]) -> dict[str, dict[str, float]]:
    """Median and worst of each figure over several runs of one scenario."""
    figures = {
        "writes_resumed_after": max,
        "longest_write_gap": max,
        "client_errors_writes": max,
        "client_errors_reads": max,
        "acknowledged_writes_missing": max,
        "duplicate_posts": max,
        "reads_served_during_outage": min,
        "split_brain_samples": max,
        "stream_reconnects": max,
    }
    summary: dict[str, dict[str, float]] = {}
    for name, worst in figures.items():
        values = [float(getattr(report, name)) for report in reports]
        summary[name] = {"median": statistics.median(values), "worst": worst(values)}
    return summary
