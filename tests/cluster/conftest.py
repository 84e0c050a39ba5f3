"""One local cluster for the session: etcd, Patroni/PostgreSQL, Redis, HAProxy, two app nodes.

It listens on a random 127.x.y.0/24 network, so it never meets a developer's own cluster or
anything on 127.0.0.1, and lives in a temporary directory (under /tmp, which the `postgres`
user can reach when the tests run as root).
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from townsquare.cluster.layout import HAPROXY_HTTP_PORT, ClusterLayout
from townsquare.cluster.nodes import LocalCluster


def free_network() -> str:
    for _ in range(50):
        network = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"
        with socket.socket() as probe:
            try:
                probe.bind((f"{network}.1", HAPROXY_HTTP_PORT))
            except OSError:
                continue
        return network
    raise RuntimeError("no free loopback network for a test cluster")


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    def interrupt(_signum: int, _frame: object) -> None:
        # The nodes run in sessions of their own: a terminated run must still stop them.
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    root = Path(tempfile.mkdtemp(prefix="townsquare-cluster-", dir="/tmp"))
    root.chmod(0o755)
    local = LocalCluster(ClusterLayout(root, free_network()))
    try:
        local.up()
        yield local
    finally:
        try:
            local.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)
