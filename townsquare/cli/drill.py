"""``townsquare drill SCENARIO``: kill part of the local cluster under load and report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from townsquare.cli.cluster import cluster_options, local_cluster
from townsquare.cluster.drills import SCENARIOS, DrillPlan, run_drill, summarise
from townsquare.cluster.nodes import ClusterError


@click.command()
@click.argument("scenario", type=click.Choice(sorted(SCENARIOS)))
@cluster_options
@click.option(
    "--runs",
    default=1,
    show_default=True,
    type=click.IntRange(1, 20),
    help="Runs, one after another.",
)
@click.option(
    "--after",
    default=35.0,
    show_default=True,
    type=click.FloatRange(5, 600),
    help="Seconds the workload goes on after the kill.",
)
@click.option(
    "--writes",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.5, 200),
    help="Posts started per second.",
)
@click.option(
    "--reads",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.5, 500),
    help="Timeline reads started per second.",
)
@click.option(
    "--streams",
    default=4,
    show_default=True,
    type=click.IntRange(0, 200),
    help="Streaming connections held open.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def drill(
    scenario: str,
    root: Path,
    network: str,
    runs: int,
    after: float,
    writes: float,
    reads: float,
    streams: int,
    as_json: bool,
) -> None:
    """Run a workload through HAProxy, kill -9 part of the cluster, and report what clients saw.

    Scenarios: primary-node, primary-postmaster, app-node, redis, etcd-member, standby, rejoin.
    The cluster is started first if it is not running (townsquare cluster up), and is healthy
    again when the drill ends. Exits with status 1 if an acknowledged write went missing or two
    PostgreSQL members accepted writes at once.
    """
    local = local_cluster(root, network)
    plan = DrillPlan(after=after, writes_per_second=writes, reads_per_second=reads, streams=streams)

    def echo(line: str) -> None:
        click.echo(line, err=True)

    reports = []
    try:
        local.up(echo=lambda line: None)
        for run in range(1, runs + 1):
            echo(f"{scenario}: run {run} of {runs}")
            report = asyncio.run(run_drill(local, SCENARIOS[scenario], plan, echo))
            reports.append(report)
            if not as_json:
                for name, value in report.as_dict().items():
                    click.echo(f"  {name}: {value}")
    except ClusterError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(
            json.dumps(
                {"runs": [r.as_dict() for r in reports], "summary": summarise(reports)}, indent=2
            )
        )
    elif runs > 1:
        click.echo("summary (median / worst):")
        for name, figures in summarise(reports).items():
            click.echo(f"  {name}: {figures['median']:g} / {figures['worst']:g}")
    if not all(report.passed for report in reports):
        raise SystemExit(1)
