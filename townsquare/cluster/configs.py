"""The configuration of every program of a local cluster, written from its layout.

Timings are chosen for failover: Patroni's leader lease is 20 s (its lowest sensible value), its
loop runs every second, and HAProxy checks every member twice a second, so a dead primary is
replaced about 20 s after it stops renewing its lease. Synchronous replication is strict and
waits for standbys to *apply* each commit, so no acknowledged write is lost by a failover and a
read on a standby sees every write acknowledged before it.
"""

from __future__ import annotations

import json
from typing import Any

from townsquare.cluster.layout import (
    APP_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    HAPROXY_HTTP_PORT,
    HAPROXY_READ_PORT,
    HAPROXY_REDIS_PORT,
    HAPROXY_STATS_PORT,
    HAPROXY_WRITE_PORT,
    PATRONI_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    SCOPE,
    SENTINEL_PORT,
    ClusterLayout,
    Node,
)

# Patroni's distributed-configuration timings (seconds); see the module docstring.
PATRONI_TTL = 20
PATRONI_LOOP_WAIT = 1
PATRONI_RETRY_TIMEOUT = 5

# Sentinel declares a Redis master dead after this long without answers.
SENTINEL_DOWN_AFTER_MS = 2_000


def etcd_command(layout: ClusterLayout, node: Node) -> list[str]:
    members = ",".join(
        f"{member.name}=http://{member.address}:{ETCD_PEER_PORT}"
        for member in layout.of_role("etcd")
    )
    client = f"http://{node.address}:{ETCD_CLIENT_PORT}"
    peer = f"http://{node.address}:{ETCD_PEER_PORT}"
    return [
        "etcd",
        "--name",
        node.name,
        "--data-dir",
        str(layout.directory(node) / "data"),
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        members,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        f"{SCOPE}-{layout.network}",
        "--heartbeat-interval",
        "100",
        "--election-timeout",
        "1000",
    ]


def patroni_dynamic_config() -> dict[str, Any]:
    """What Patroni keeps in etcd for the whole cluster (applied at bootstrap, and again by
    ``cluster up`` so an existing cluster follows changes)."""
    return {
        "ttl": PATRONI_TTL,
        "loop_wait": PATRONI_LOOP_WAIT,
        "retry_timeout": PATRONI_RETRY_TIMEOUT,
        "maximum_lag_on_failover": 16 * 1024 * 1024,
        # A primary whose postmaster crashed hands over to a synchronous standby at once (it
        # loses nothing) instead of crash-recovering and restarting in place, which takes
        # longer with use_pg_rewind (a single-user-mode recovery first).
        "primary_start_timeout": 0,
        "synchronous_mode": True,
        "synchronous_mode_strict": True,
        # Both standbys confirm every commit while they are up, so a read sent to either
        # one sees every acknowledged write; with one down, the other alone does.
        "synchronous_node_count": 2,
        "postgresql": {
            "use_pg_rewind": True,
            # No replication slots: a member's slot would only exist on a new primary once
            # Patroni's first loop after the promotion creates it (about two seconds, during
            # which the remaining standby cannot stream and strict synchronous mode holds every
            # commit). WAL is kept for standbys by wal_keep_size instead.
            "use_slots": False,
            "parameters": {
                "synchronous_commit": "remote_apply",
                "wal_level": "replica",
                "wal_log_hints": "on",
                "hot_standby": "on",
                "max_connections": 200,
                "max_wal_senders": 10,
                "max_replication_slots": 10,
                # What a standby that was stopped, or an old primary being rewound, may still
                # need from this member's WAL.
                "wal_keep_size": "1GB",
                # A standby re-pointed at a new primary retries streaming after this long
                # (default 5 s), until the new primary has left recovery.
                "wal_retrieve_retry_interval": "500ms",
                "shared_buffers": "32MB",
                "fsync": "on",
            },
        },
    }


def patroni_config(layout: ClusterLayout, node: Node, bin_dir: str) -> dict[str, Any]:
    directory = layout.directory(node)
    # Clients reach the members from 127.0.0.1 as often as from their own addresses.
    network = "127.0.0.0/8"
    return {
        "scope": SCOPE,
        "name": node.name,
        "namespace": "/service/",
        "log": {"level": "INFO"},
        "restapi": {
            "listen": f"{node.address}:{PATRONI_PORT}",
            "connect_address": f"{node.address}:{PATRONI_PORT}",
        },
        "etcd3": {"hosts": layout.etcd_endpoints, "protocol": "http"},
        "bootstrap": {
            "dcs": patroni_dynamic_config(),
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, {"auth": "trust"}],
            "pg_hba": [
                f"host replication all {network} trust",
                f"host all all {network} trust",
                "local all all trust",
            ],
        },
        "postgresql": {
            "listen": f"{node.address}:{POSTGRES_PORT}",
            "connect_address": f"{node.address}:{POSTGRES_PORT}",
            "data_dir": str(directory / "data"),
            "bin_dir": bin_dir,
            "pgpass": str(directory / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": "postgres"},
                "rewind": {"username": "postgres"},
            },
            "parameters": {"unix_socket_directories": str(directory)},
            "pg_hba": [
                f"host replication all {network} trust",
                f"host all all {network} trust",
                "local all all trust",
            ],
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
    }


def patroni_yaml(layout: ClusterLayout, node: Node, bin_dir: str) -> str:
    # JSON is YAML; Patroni reads either.
    return json.dumps(patroni_config(layout, node, bin_dir), indent=2)


def redis_conf(layout: ClusterLayout, node: Node, *, replica_of: str | None) -> str:
    lines = [
        f"bind {node.address}",
        f"port {REDIS_PORT}",
        f"dir {layout.directory(node)}",
        "protected-mode no",
        "daemonize no",
        # Everything in Redis can be rebuilt: no snapshots, no append-only file.
        'save ""',
        "appendonly no",
        "maxmemory 64mb",
        "maxmemory-policy allkeys-lru",
    ]
    if replica_of:
        lines.append(f"replicaof {replica_of} {REDIS_PORT}")
    return "\n".join(lines) + "\n"


def sentinel_conf(layout: ClusterLayout, node: Node, master: str) -> str:
    return (
        "\n".join(
            [
                f"bind {node.address}",
                f"port {SENTINEL_PORT}",
                f"dir {layout.directory(node)}",
                "protected-mode no",
                "daemonize no",
                f"sentinel monitor {SCOPE} {master} {REDIS_PORT} 2",
                f"sentinel down-after-milliseconds {SCOPE} {SENTINEL_DOWN_AFTER_MS}",
                f"sentinel failover-timeout {SCOPE} 10000",
                f"sentinel parallel-syncs {SCOPE} 1",
            ]
        )
        + "\n"
    )


def haproxy_cfg(layout: ClusterLayout) -> str:
    front = layout.haproxy
    apps = "\n".join(
        f"    server {node.name} {node.address}:{APP_PORT} check" for node in layout.of_role("app")
    )
    postgres = layout.of_role("postgres")
    # Standbys (down in the write backend) are asked every 100 ms, so a promoted one takes
    # writes as soon as it holds the leader lock.
    writers = "\n".join(
        f"    server {node.name} {node.address}:{POSTGRES_PORT} check port {PATRONI_PORT}"
        " downinter 100ms"
        for node in postgres
    )
    readers = "\n".join(
        f"    server {node.name} {node.address}:{POSTGRES_PORT} check port {PATRONI_PORT}"
        for node in postgres
    )
    # With no standby left, reads go to the primary (tracked from the write backend).
    reader_backups = "\n".join(
        f"    server {node.name}-primary {node.address}:{POSTGRES_PORT} backup "
        f"track postgres_write/{node.name}"
        for node in postgres
    )
    redis = "\n".join(
        f"    server {node.name} {node.address}:{REDIS_PORT} check"
        for node in layout.of_role("redis")
    )
    return f"""\
global
    maxconn 4096
    stats socket {layout.directory("haproxy") / "admin.sock"} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    timeout check 3s
    retries 3
    option redispatch 1

frontend web
    bind {front}:{HAPROXY_HTTP_PORT}
    option forwardfor
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    # A request whose node died before answering is sent to another node, unless replaying it
    # could do something twice: a non-idempotent method without an Idempotency-Key.
    retry-on conn-failure empty-response response-timeout 502 504
    # A replay needs the whole request at hand: wait for small bodies before forwarding.
    option http-buffer-request
    http-request disable-l7-retry if !METH_GET !METH_HEAD !METH_OPTIONS \
!{{ req.hdr(Idempotency-Key) -m found }}
    # Connect from HAProxy's own address, the one the app trusts for X-Forwarded-For. Slow
    # answers on a busy machine are not a dead node: new requests to a dead one fail to
    # connect and are redispatched at once anyway.
    default-server inter 1s fall 3 rise 2 on-marked-down shutdown-sessions source {front}
{apps}

listen stats
    bind {front}:{HAPROXY_STATS_PORT}
    stats enable
    stats uri /
    stats refresh 2s

listen postgres_write
    mode tcp
    bind {front}:{HAPROXY_WRITE_PORT}
    timeout client 1h
    timeout server 1h
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 500ms fastinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions
{writers}

listen postgres_read
    mode tcp
    bind {front}:{HAPROXY_READ_PORT}
    timeout client 1h
    timeout server 1h
    balance leastconn
    option httpchk OPTIONS /replica
    http-check expect status 200
    default-server inter 500ms fastinter 250ms fall 2 rise 1 on-marked-down shutdown-sessions
{readers}
{reader_backups}

listen redis
    mode tcp
    bind {front}:{HAPROXY_REDIS_PORT}
    timeout client 1h
    timeout server 1h
    option tcp-check
    tcp-check connect
    tcp-check send PING\\r\\n
    tcp-check expect string +PONG
    tcp-check send info\\ replication\\r\\n
    tcp-check expect string role:master
    tcp-check send QUIT\\r\\n
    tcp-check expect string +OK
    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{redis}
"""


def app_environment(layout: ClusterLayout, node: Node, secret_key: str) -> dict[str, str]:
    """What each app node is told; shared state lives in PostgreSQL and Redis, not the node."""
    return {
        "TOWNSQUARE_DOMAIN": f"{layout.haproxy}:{HAPROXY_HTTP_PORT}",
        "TOWNSQUARE_DATABASE_URL": layout.write_url,
        "TOWNSQUARE_DATABASE_READ_URL": layout.read_url,
        "TOWNSQUARE_REDIS_URL": layout.redis_url,
        "TOWNSQUARE_SECRET_KEY": secret_key,
        # Media would live on shared storage on real machines; here all nodes share one dir.
        "TOWNSQUARE_DATA_DIR": str(layout.root / "shared"),
        "TOWNSQUARE_SHIELD_TRUSTED_PROXIES": f"{layout.haproxy}/32",
        # Every node shares one machine with the database and the drill's clients, so latency
        # swings with their load; a higher floor keeps the shield's adaptive limit from
        # shedding ordinary traffic while a failover slows answers.
        "TOWNSQUARE_SHIELD_MIN_CONCURRENCY": "32",
        "TOWNSQUARE_LOG_LEVEL": "warning",
    }
