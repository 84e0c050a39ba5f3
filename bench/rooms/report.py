"""The benchmark's figures as Markdown, for docs/ROOMS.md."""

from __future__ import annotations

import argparse
import os
import statistics
from typing import Any

from bench.rooms.storm import describe


def report(args: argparse.Namespace, results: dict[str, Any]) -> str:
    ts, base = results["townsquare"], results["baseline"]

    def row(label: str, key: str, phase: str, fmt: str, aim: str) -> str:
        return (
            f"| {label} | {format(ts[phase][key], fmt)} | {format(base[phase][key], fmt)} | {aim} |"
        )

    def clients(phase: dict[str, Any]) -> str:
        return (
            f"{phase['client_cpu_share']:.2f} in {phase['client_processes']} "
            f"(busiest {phase['client_busiest_share']:.2f}); "
            f"speaker {phase['speaker_cpu_share']:.2f}"
        )

    def rounds(figures: dict[str, Any]) -> dict[str, Any]:
        value: dict[str, Any] = figures["rounds"]
        return value

    def spread(figures: dict[str, Any], key: str) -> str:
        r = rounds(figures)
        changes = r[f"{key}_changes"]
        return f"{r[f'{key}_change_median']:+.0f}% ({min(changes):+.0f}% to {max(changes):+.0f}%)"

    def pooled(figures: dict[str, Any]) -> str:
        r = rounds(figures)
        return (
            f"{r['pooled_steady_p99_ms']:.1f} → {r['pooled_frozen_p99_ms']:.1f} ms "
            f"({r['pooled_p99_change']:+.0f}%)"
        )

    late = results["late"]
    command = f"python -m bench.rooms --listeners {args.listeners} --seconds {args.seconds:g}"
    if args.client_processes:
        command += f" --client-processes {args.client_processes}"
    lines = [
        f"Run {results['started']}, `{command}` on {os.cpu_count()} cores; load average "
        f"(1/5 min) {results['load_start']} at the start, {results['load_end']} at the end.",
        "",
        f"One node, {args.listeners} listeners ({args.probes} of them probes) in "
        f"{ts['steady']['client_processes']} client processes, one speaker "
        "(32 kbit/s Opus, 250 ms chunks):",
        "",
        "| Figure | Townsquare | Baseline (bare websockets broadcast) | Aim |",
        "| --- | --- | --- | --- |",
        f"| Memory per idle listener (KB) | {ts['kb_per_listener']:.1f} | "
        f"{base['kb_per_listener']:.1f} | < 32 |",
        row("Deliveries per second", "deliveries_per_s", "steady", ".0f", "—"),
        row(
            "Deliveries per CPU-second of the server",
            "deliveries_per_cpu_s",
            "steady",
            ".0f",
            "≥ 40,000",
        ),
        row("Server CPU (cores busy)", "cpu_share", "steady", ".2f", "—"),
        row("Relay latency p50 (ms, chunk in → last write)", "relay_p50_ms", "steady", ".1f", "—"),
        row("Relay latency p99 (ms)", "relay_p99_ms", "steady", ".1f", "< 100"),
        row(
            "Probe latency p50 (ms, chunk sent → Cluster received)",
            "e2e_p50_ms",
            "steady",
            ".1f",
            "—",
        ),
        row("Probe latency p99 (ms)", "e2e_p99_ms", "steady", ".1f", "—"),
        row("Clusters received / (sent x listeners)", "received", "steady", ".3f", "1"),
        row("… and 15 s after the stream at most", "received_drained", "steady", ".3f", "—"),
        f"| Client processes' CPU (cores busy) | {clients(ts['steady'])} | "
        f"{clients(base['steady'])} | — |",
        row("Load average during the stream", "load", "steady", "", "—"),
        row(
            "With 1% frozen listeners (first pair): relay p99 (ms)",
            "relay_p99_ms",
            "frozen",
            ".1f",
            "—",
        ),
        f"| … change of the others' relay p99, median of {rounds(ts)['count']} pairs "
        f"(range) | {spread(ts, 'p99')} | {spread(base, 'p99')} | < 10% |",
        f"| … the same for relay p50 | {spread(ts, 'p50')} | {spread(base, 'p50')} | — |",
        f"| … the same for the server's CPU | {spread(ts, 'cpu')} | {spread(base, 'cpu')} | — |",
        f"| … relay p99 of all pairs' streams together, without → with (change) | "
        f"{pooled(ts)} | {pooled(base)} | — |",
        f"| … lowest share of Clusters received by the others | "
        f"{rounds(ts)['others_received_min']:.3f} | {rounds(base)['others_received_min']:.3f} "
        "| 1 |",
        row("… probe latency p99 (ms)", "e2e_p99_ms", "frozen", ".1f", "—"),
        f"| … client processes' CPU (cores busy) | {clients(ts['frozen'])} | "
        f"{clients(base['frozen'])} | — |",
        "",
    ]
    if late:
        lines += [
            f"Late joiners ({len(late)}, while the room is live): from starting to connect to the "
            f"first whole Cluster after the init segment, p50 {statistics.median(late) * 1000:.0f} "
            f"ms, max {max(late) * 1000:.0f} ms (aim: audio within 1.5 s).",
            "",
        ]
    s = results["storm"]
    lines += [f"Join storm: {describe(s, results['storm_rate'], 1)}", ""]
    if "storm_two_workers" in results:
        lines += [
            "The same storm against `townsquare serve --workers 2` (the room shared through "
            f"Redis): {describe(results['storm_two_workers'], results['storm_rate'], 2)}",
            "",
        ]
    if "machine" in results:
        m = results["machine"]
        st = m["steady"]
        lines += [
            f"Two nodes on this machine joined by Redis pub/sub, {args.machine_listeners} "
            f"listeners split between them, the speaker on the first: "
            f"{st['deliveries_per_s']:.0f} deliveries/s, {st['cpu_share']:.2f} cores busy, relay "
            f"p99 {st['relay_p99_ms']:.1f} ms, probe latency p50/p99 {st['e2e_p50_ms']:.0f}/"
            f"{st['e2e_p99_ms']:.0f} ms, {st['received']:.3f} of Clusters received within the "
            f"stream ({st['received_drained']:.3f} 15 s after it at most), "
            f"{m['kb_per_listener']:.1f} KB per listener; client processes {clients(st)} cores "
            f"busy; load {st['load']}.",
            "",
        ]
    return "\n".join(lines)
