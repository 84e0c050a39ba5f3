"""``townsquare cluster up`` brings up a working cluster; ``status`` describes it."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from townsquare.cli import main
from townsquare.cluster.nodes import LocalCluster

pytestmark = pytest.mark.timeout(600)


def test_one_primary_and_two_synchronous_standbys(cluster: LocalCluster) -> None:
    rows = {row["node"]: row for row in cluster.status()}
    assert all(row["running"] for row in rows.values()), rows
    roles = sorted(rows[name]["detail"].split()[0] for name in ("pg1", "pg2", "pg3"))
    assert roles == ["master", "replica", "replica"]
    standbys = [rows[n]["detail"] for n in ("pg1", "pg2", "pg3") if "replica" in rows[n]["detail"]]
    assert all("(synchronous)" in detail for detail in standbys)
    assert sorted(rows[name]["detail"] for name in ("redis1", "redis2")) == ["master", "slave"]
    assert rows["app1"]["detail"] == rows["app2"]["detail"] == "ready"


def test_status_command_lists_every_node(cluster: LocalCluster) -> None:
    result = CliRunner().invoke(
        main,
        ["cluster", "status", "--dir", str(cluster.root), "--network", cluster.layout.network],
    )
    assert result.exit_code == 0, result.output
    for node in cluster.layout.nodes:
        assert node.name in result.output


def test_the_app_answers_through_haproxy_on_every_node(cluster: LocalCluster) -> None:
    with httpx.Client(base_url=cluster.layout.base_url, timeout=30) as client:
        instance = client.get("/api/v1/instance")
        assert instance.status_code == 200
        assert instance.json()["uri"] == f"{cluster.layout.haproxy}:28080"
    for node in cluster.layout.of_role("app"):
        assert cluster.app_ready(node)


def test_a_write_reaches_both_standbys(cluster: LocalCluster) -> None:
    primary = cluster.primary()
    assert primary is not None
    cluster.psql(primary, "CREATE TABLE IF NOT EXISTS cluster_probe (n int)", "townsquare")
    cluster.psql(primary, "INSERT INTO cluster_probe VALUES (42)", "townsquare")
    for node in cluster.layout.of_role("postgres"):
        if node != primary:
            # remote_apply: the commit returned only once both standbys had applied it.
            seen = cluster.psql(
                node, "SELECT count(*) FROM cluster_probe WHERE n = 42", "townsquare"
            )
            assert seen.strip() == "1"
