"""Short failover drills on every test run: no acknowledged write lost, never two primaries."""

from __future__ import annotations

import asyncio

import pytest

from townsquare.cluster.drills import SCENARIOS, DrillPlan, DrillReport, run_drill
from townsquare.cluster.nodes import LocalCluster

pytestmark = pytest.mark.timeout(900)

SHORT = DrillPlan(warmup=3.0, after=12.0, writes_per_second=3.0, reads_per_second=5.0, streams=2)


def drill(cluster: LocalCluster, scenario: str, plan: DrillPlan = SHORT) -> DrillReport:
    return asyncio.run(run_drill(cluster, SCENARIOS[scenario], plan, lambda _line: None))


def test_an_app_node_dies(cluster: LocalCluster) -> None:
    report = drill(cluster, "app-node")
    assert report.killed == "app1"
    assert report.writes_acknowledged == report.posts_sent > 0
    assert report.acknowledged_writes_missing == 0
    assert report.duplicate_posts == 0
    assert report.split_brain_samples == 0
    assert report.reads_served > 0
    # The killed node is back and serving once the drill has ended.
    assert cluster.app_ready(cluster.layout.node("app1"))


def test_the_primary_node_dies(cluster: LocalCluster) -> None:
    old = cluster.primary()
    assert old is not None
    report = drill(
        cluster,
        "primary-node",
        DrillPlan(warmup=3.0, after=30.0, writes_per_second=3.0, reads_per_second=5.0, streams=2),
    )
    assert report.killed == old.name
    assert report.writes_acknowledged == report.posts_sent > 0
    assert report.acknowledged_writes_missing == 0
    assert report.duplicate_posts == 0
    assert report.split_brain_samples == 0
    assert report.most_primaries_at_once == 1
    # Another member took over; the old one rejoined as a synchronous standby.
    new = cluster.primary()
    assert new is not None and new != old
    assert cluster.standbys_streaming()
    # Reads went on from the standbys while the primary was being replaced.
    assert report.reads_served_during_outage > 0
