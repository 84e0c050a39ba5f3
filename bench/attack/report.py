"""Figures per client class for each attack run, and the Markdown table they make."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.attack.attacks import AttackResult
from bench.attack.legit import DEADLINE, Sample

KINDS = ("logged-in", "anonymous")
WINDOW = 1.0  # seconds, for the recovery time


@dataclass
class Phase:
    start: float
    end: float
    cpu_seconds: float
    rss_mb: float
    cpu_wait_seconds: float = 0.0  # ready to run, waiting for a core

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class ClassFigures:
    requests: int = 0
    success: float = 0.0  # share answered 2xx within the deadline
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    refused: int = 0  # 429 or 503 to a legitimate request


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def figures(samples: list[Sample]) -> ClassFigures:
    if not samples:
        return ClassFigures()
    good = sum(1 for s in samples if 200 <= s.status < 300 and s.latency <= DEADLINE)
    latencies = [s.latency for s in samples]
    return ClassFigures(
        requests=len(samples),
        success=good / len(samples),
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        refused=sum(1 for s in samples if s.status in (429, 503)),
    )


@dataclass
class Run:
    shield: str
    scenario: str
    multiplier: int
    attack: Phase
    recovery: Phase | None
    result: AttackResult | None
    load_average: float
    by_kind: dict[str, ClassFigures] = field(default_factory=dict)
    recovery_seconds: float | None = None

    def attach(self, samples: list[Sample], baseline: Run) -> None:
        during = [s for s in samples if self.attack.start <= s.started < self.attack.end]
        self.by_kind = {k: figures([s for s in during if s.kind == k]) for k in KINDS}
        if self.recovery is None:
            return
        reference = baseline.by_kind.get("logged-in", ClassFigures())
        self.recovery_seconds = _recovery(
            [s for s in samples if s.kind == "logged-in"], self.recovery, reference
        )


def _recovery(samples: list[Sample], phase: Phase, reference: ClassFigures) -> float | None:
    """Seconds after the attack stopped until every later 1 s window of logged-in requests is
    back to baseline (>= 99% success, p99 within 3x the baseline p99 or 50 ms of it); None when
    that did not happen before the end of the recovery phase."""
    target_p99 = max(3 * reference.p99_ms, reference.p99_ms + 50.0) / 1000
    windows = []
    start = phase.start
    while start + WINDOW <= phase.end + 1e-9:
        inside = [s for s in samples if start <= s.started < start + WINDOW]
        ok = (
            bool(inside)
            and figures(inside).success >= 0.99
            and percentile([s.latency for s in inside], 0.99) <= target_p99
        )
        windows.append((start, ok))
        start += WINDOW / 2
    recovered_at: float | None = None
    for begun, ok in windows:
        if ok and recovered_at is None:
            recovered_at = begun
        elif not ok:
            recovered_at = None
    return None if recovered_at is None else recovered_at - phase.start


def _attack_cell(run: Run) -> str:
    result = run.result
    if result is None:
        return "none"
    if run.multiplier:
        achieved = result.sent / max(result.seconds, 1e-6)
        return f"{achieved:,.0f} req/s"
    return f"{result.held_peak:,} conns, {result.sent:,} opened"


def render(runs: list[Run], header: str) -> str:
    lines = [
        header,
        "",
        "| shield | scenario | attack achieved | attack served | logged-in ok | logged-in "
        "p50 / p99 ms | logged-in refused | anonymous ok | anonymous p50 / p99 ms | anonymous "
        "refused | server CPU | server waiting for a core | server RSS | recovery | load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- |",
    ]
    for run in runs:
        logged_in = run.by_kind.get("logged-in", ClassFigures())
        anonymous = run.by_kind.get("anonymous", ClassFigures())
        scenario = run.scenario + (f" x{run.multiplier}" if run.multiplier else "")
        served = "" if run.result is None else f"{run.result.served:,}"
        if run.recovery is None:
            recovery = ""
        elif run.recovery_seconds is None:
            recovery = f"> {run.recovery.seconds:.0f} s"
        else:
            recovery = f"{run.recovery_seconds:.1f} s"
        cpu = run.attack.cpu_seconds / max(run.attack.seconds, 1e-6) * 100
        waiting = run.attack.cpu_wait_seconds / max(run.attack.seconds, 1e-6) * 100
        lines.append(
            f"| {run.shield} | {scenario} | {_attack_cell(run)} | {served} "
            f"| {logged_in.success:.1%} | {logged_in.p50_ms:.0f} / {logged_in.p99_ms:.0f} "
            f"| {logged_in.refused} | {anonymous.success:.1%} "
            f"| {anonymous.p50_ms:.0f} / {anonymous.p99_ms:.0f} | {anonymous.refused} "
            f"| {cpu:.0f}% | {waiting:.0f}% | {run.attack.rss_mb:.0f} MB | {recovery} "
            f"| {run.load_average:.1f} |"
        )
    return "\n".join(lines) + "\n"


def breakdown(
    runs: list[Run],
    samples_by_shield: dict[str, list[Sample]],
    lags_by_shield: dict[str, list[tuple[float, float]]] | None = None,
) -> str:
    """Per request type, for reading the table: requests, success and p99 in each run; the
    p99 of stream openings' connect time, and how late the clients' own loop ran (p99 and
    worst), which every latency includes."""
    lines = []
    for run in runs:
        samples = samples_by_shield.get(run.shield, [])
        during = [s for s in samples if run.attack.start <= s.started < run.attack.end]
        lags = [
            lag
            for when, lag in (lags_by_shield or {}).get(run.shield, [])
            if run.attack.start <= when < run.attack.end
        ]
        connects = [
            s.latency if s.label.endswith("~connect") else s.connect
            for s in during
            if s.label.startswith("stream")
        ]
        parts = [
            f"client loop lag p99 {percentile(lags, 0.99) * 1000:.0f} max "
            f"{max(lags, default=0.0) * 1000:.0f} ms",
            f"stream connect p99 {percentile(connects, 0.99) * 1000:.0f} ms",
        ]
        for label in sorted({s.label for s in during}):
            figs = figures([s for s in during if s.label == label])
            statuses = Counter(s.status for s in during if s.label == label)
            parts.append(
                f"{label} {figs.requests} {figs.success:.0%} p99 {figs.p99_ms:.0f} {dict(statuses)}"
            )
        scenario = run.scenario + (f" x{run.multiplier}" if run.multiplier else "")
        lines.append(f"[{run.shield}] {scenario}: " + "; ".join(parts))
    return "\n".join(lines)
