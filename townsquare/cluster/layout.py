"""Where every node of a local cluster lives: its loopback address, ports and directory.

Every node gets its own address in one 127.x.y.0/24 network, so a cluster never collides with
services on 127.0.0.1, and two clusters (a developer's and the test suite's) can run side by side
on different networks. Ports are the same on every address and deliberately non-standard.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_NETWORK = "127.0.90"

ETCD_CLIENT_PORT = 23790
ETCD_PEER_PORT = 23800
POSTGRES_PORT = 25432
PATRONI_PORT = 28008
REDIS_PORT = 26379
SENTINEL_PORT = 26380
APP_PORT = 28000
HAPROXY_HTTP_PORT = 28080
HAPROXY_WRITE_PORT = 25000
HAPROXY_READ_PORT = 25001
HAPROXY_REDIS_PORT = 26000
HAPROXY_STATS_PORT = 28404

DATABASE_NAME = "townsquare"
SCOPE = "townsquare"


@dataclass(frozen=True)
class Node:
    """One machine of the cluster: a name, a role and an address."""

    name: str
    role: str  # etcd, postgres, redis, sentinel, haproxy, app
    address: str


@dataclass(frozen=True)
class ClusterLayout:
    root: Path
    network: str = DEFAULT_NETWORK
    app_nodes: int = 2
    app_workers: int = 2
    nodes: tuple[Node, ...] = field(init=False)

    def __post_init__(self) -> None:
        first = ipaddress.ip_address(f"{self.network}.1")
        if not first.is_loopback:
            raise ValueError(f"{self.network}.0/24 is not a loopback network")
        nodes = [Node("haproxy", "haproxy", self.address(1))]
        nodes += [Node(f"etcd{i}", "etcd", self.address(10 + i)) for i in (1, 2, 3)]
        nodes += [Node(f"pg{i}", "postgres", self.address(20 + i)) for i in (1, 2, 3)]
        nodes += [Node(f"redis{i}", "redis", self.address(30 + i)) for i in (1, 2)]
        nodes += [Node(f"sentinel{i}", "sentinel", self.address(40 + i)) for i in (1, 2, 3)]
        nodes += [
            Node(f"app{i}", "app", self.address(60 + i)) for i in range(1, self.app_nodes + 1)
        ]
        object.__setattr__(self, "nodes", tuple(nodes))

    def address(self, host: int) -> str:
        return f"{self.network}.{host}"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def of_role(self, role: str) -> list[Node]:
        return [node for node in self.nodes if node.role == role]

    def directory(self, node: Node | str) -> Path:
        name = node if isinstance(node, str) else node.name
        return self.root / name

    @property
    def haproxy(self) -> str:
        return self.node("haproxy").address

    @property
    def base_url(self) -> str:
        return f"http://{self.haproxy}:{HAPROXY_HTTP_PORT}"

    @property
    def write_url(self) -> str:
        return f"postgresql+asyncpg://postgres@{self.haproxy}:{HAPROXY_WRITE_PORT}/{DATABASE_NAME}"

    @property
    def read_url(self) -> str:
        return f"postgresql+asyncpg://postgres@{self.haproxy}:{HAPROXY_READ_PORT}/{DATABASE_NAME}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.haproxy}:{HAPROXY_REDIS_PORT}/0"

    @property
    def etcd_endpoints(self) -> list[str]:
        return [f"{node.address}:{ETCD_CLIENT_PORT}" for node in self.of_role("etcd")]

    def patroni_url(self, node: Node) -> str:
        return f"http://{node.address}:{PATRONI_PORT}"
