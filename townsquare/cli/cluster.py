"""``townsquare cluster up|down|status``: a whole cluster on this machine's loopback addresses."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from townsquare.cluster.layout import DEFAULT_NETWORK, ClusterLayout
from townsquare.cluster.nodes import ClusterError, LocalCluster


def cluster_options(command: click.decorators.FC) -> click.decorators.FC:
    command = click.option(
        "--network",
        default=DEFAULT_NETWORK,
        show_default=True,
        help="First three octets of the loopback /24 the nodes listen on (127.x.y).",
    )(command)
    command = click.option(
        "--dir",
        "root",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("var/cluster"),
        show_default=True,
        help="Where the nodes keep their data, configuration and logs.",
    )(command)
    return command


def local_cluster(root: Path, network: str, app_nodes: int = 2, workers: int = 2) -> LocalCluster:
    try:
        layout = ClusterLayout(root.resolve(), network, app_nodes=app_nodes, app_workers=workers)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--network") from error
    return LocalCluster(layout)


@click.group()
def cluster() -> None:
    """Run a whole cluster locally: etcd, Patroni/PostgreSQL, Redis, HAProxy, app nodes."""


@cluster.command()
@cluster_options
@click.option(
    "--app-nodes", default=2, show_default=True, type=click.IntRange(1, 9), help="App nodes."
)
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(1, 16), help="Workers per node."
)
def up(root: Path, network: str, app_nodes: int, workers: int) -> None:
    """Start every node that is not running (initialising the cluster on first use)."""
    local = local_cluster(root, network, app_nodes, workers)
    try:
        local.up(echo=lambda line: click.echo(f"starting {line}", err=True))
    except ClusterError as error:
        raise click.ClickException(f"{error} (logs: {local.root}/<node>/node.log)") from error
    click.echo(f"Townsquare cluster up: {local.layout.base_url}")


@cluster.command()
@cluster_options
@click.option("--purge", is_flag=True, help="Also delete every node's data.")
def down(root: Path, network: str, purge: bool) -> None:
    """Stop every node (the app first, etcd last)."""
    local = local_cluster(root, network)
    local.down()
    if purge:
        shutil.rmtree(local.root, ignore_errors=True)
    click.echo("Townsquare cluster down" + (" and purged" if purge else ""))


@cluster.command()
@cluster_options
def status(root: Path, network: str) -> None:
    """Show each node: running or not, and its role (primary, synchronous standby, master...)."""
    local = local_cluster(root, network)
    rows = local.status()
    for row in rows:
        state = "up" if row["running"] else "DOWN"
        click.echo(
            f"{row['node']:<10} {row['role']:<9} {row['address']:<15} {state:<5} {row['detail']}"
        )
    if not all(row["running"] for row in rows):
        raise SystemExit(1)


@cluster.command()
@cluster_options
@click.argument("node")
def kill(root: Path, network: str, node: str) -> None:
    """kill -9 every process of NODE (e.g. pg1, app2, redis1, etcd3)."""
    local = local_cluster(root, network)
    try:
        groups = local.kill_node(node)
    except KeyError as error:
        raise click.BadParameter(f"no node named {node}", param_hint="NODE") from error
    click.echo(f"killed {node} (process groups {', '.join(map(str, groups)) or 'none'})")


@cluster.command()
@cluster_options
@click.argument("node")
def start(root: Path, network: str, node: str) -> None:
    """Start NODE again (a PostgreSQL member rejoins as a standby)."""
    local = local_cluster(root, network)
    try:
        local.start_node(node)
    except KeyError as error:
        raise click.BadParameter(f"no node named {node}", param_hint="NODE") from error
    click.echo(f"started {node}")
