"""Starting, stopping and killing the nodes of a local cluster.

Each node runs in its own session, so its processes form a process group that ``kill -9`` takes
down at once. Patroni starts PostgreSQL in a session of its own (so the database survives a
crash of Patroni); a PostgreSQL node is therefore two groups, both killed together.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from townsquare.cluster import configs
from townsquare.cluster.layout import (
    APP_PORT,
    DATABASE_NAME,
    ETCD_CLIENT_PORT,
    HAPROXY_HTTP_PORT,
    HAPROXY_WRITE_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    SCOPE,
    SENTINEL_PORT,
    ClusterLayout,
    Node,
)

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0


class ClusterError(RuntimeError):
    pass


def postgres_bin_dir() -> str:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name.split(".")[0]),
    )
    if not found:
        raise ClusterError("PostgreSQL is not installed: run scripts/install-system-deps")
    return str(found[-1].parent)


def require(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin")
    if path is None:
        raise ClusterError(f"{program} is not installed: run scripts/install-system-deps")
    return path


def http_get(url: str, *, timeout: float = 1.0, method: str = "GET") -> tuple[int, bytes]:
    """Status and body, or (0, b"") when nothing answers."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read() or b"")
    except (OSError, ValueError):
        return 0, b""


def wait_until(what: str, check: Callable[[], bool], timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")


def group_alive(pgid: int) -> bool:
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(process.pid) == pgid:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


class LocalCluster:
    """The cluster described by ``layout``; its state (which node runs as which group) is kept
    in ``layout.root / "nodes.json"`` so any ``townsquare`` process can act on it."""

    def __init__(self, layout: ClusterLayout) -> None:
        self.layout = layout
        self.root = layout.root
        self.state_file = self.root / "nodes.json"
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- state ------------------------------------------------------------------------------
    def _groups(self) -> dict[str, int]:
        if not self.state_file.exists():
            return {}
        data: dict[str, int] = json.loads(self.state_file.read_text())
        return data

    def _save_group(self, name: str, pgid: int | None) -> None:
        groups = self._groups()
        if pgid is None:
            groups.pop(name, None)
        else:
            groups[name] = pgid
        self.state_file.write_text(json.dumps(groups, indent=2))

    def postmaster_pid(self, node: Node | str) -> int | None:
        pid_file = self.layout.directory(node) / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def node_groups(self, node: Node | str) -> list[int]:
        """The process groups that make up the node (empty when it is down)."""
        name = node if isinstance(node, str) else node.name
        groups = []
        pgid = self._groups().get(name)
        if pgid is not None and group_alive(pgid):
            groups.append(pgid)
        if self.layout.node(name).role == "postgres":
            postmaster = self.postmaster_pid(name)
            if postmaster is not None:
                try:
                    postmaster_group = os.getpgid(postmaster)
                except ProcessLookupError:
                    postmaster_group = None
                if postmaster_group is not None and postmaster_group not in groups:
                    groups.append(postmaster_group)
        return groups

    def is_running(self, node: Node | str) -> bool:
        name = node if isinstance(node, str) else node.name
        pgid = self._groups().get(name)
        return pgid is not None and group_alive(pgid)

    # -- files ------------------------------------------------------------------------------
    def secret_key(self) -> str:
        path = self.root / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def _prepare_directory(self, node: Node) -> Path:
        directory = self.layout.directory(node)
        directory.mkdir(parents=True, exist_ok=True)
        if node.role == "postgres" and self.run_as is not None:
            owner = pwd.getpwnam(self.run_as)
            os.chown(directory, owner.pw_uid, owner.pw_gid)
        return directory

    # -- starting ---------------------------------------------------------------------------
    def _spawn(self, node: Node, command: list[str], env: dict[str, str] | None = None) -> None:
        directory = self._prepare_directory(node)
        log = open(directory / "node.log", "ab")  # noqa: SIM115 - handed to the child
        user = self.run_as if node.role == "postgres" else None
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env=env,
            user=user,
            start_new_session=True,
        )
        log.close()
        self._children[node.name] = process
        self._save_group(node.name, process.pid)

    def start_node(self, node: Node | str) -> None:
        node = node if isinstance(node, Node) else self.layout.node(node)
        if self.is_running(node):
            return
        directory = self._prepare_directory(node)
        if node.role == "etcd":
            self._spawn(node, configs.etcd_command(self.layout, node))
        elif node.role == "postgres":
            config = directory / "patroni.yml"
            config.write_text(configs.patroni_yaml(self.layout, node, postgres_bin_dir()))
            if self.run_as is not None:
                owner = pwd.getpwnam(self.run_as)
                os.chown(config, owner.pw_uid, owner.pw_gid)
            stale = self.postmaster_pid(node)
            if stale is None:
                (directory / "data" / "postmaster.pid").unlink(missing_ok=True)
            self._spawn(node, [require("patroni"), str(config)])
        elif node.role == "redis":
            master = self.redis_master()
            replica_of = None
            if master is None and node.name != "redis1":
                replica_of = self.layout.node("redis1").address
            elif master is not None and master != node.address:
                replica_of = master
            config = directory / "redis.conf"
            config.write_text(configs.redis_conf(self.layout, node, replica_of=replica_of))
            self._spawn(node, [require("redis-server"), str(config)])
        elif node.role == "sentinel":
            config = directory / "sentinel.conf"
            if not config.exists():
                first = self.layout.node("redis1").address
                config.write_text(configs.sentinel_conf(self.layout, node, first))
            self._spawn(node, [require("redis-server"), str(config), "--sentinel"])
        elif node.role == "haproxy":
            config = directory / "haproxy.cfg"
            config.write_text(configs.haproxy_cfg(self.layout))
            self._spawn(node, [require("haproxy"), "-W", "-db", "-f", str(config)])
        elif node.role == "app":
            env = {
                **os.environ,
                **configs.app_environment(self.layout, node, self.secret_key()),
            }
            command = [
                *self.townsquare_command(),
                "serve",
                "--host",
                node.address,
                "--port",
                str(APP_PORT),
                "--workers",
                str(self.layout.app_workers),
            ]
            self._spawn(node, command, env)
        else:  # pragma: no cover - the layout knows no other role
            raise ClusterError(f"unknown role {node.role}")

    @staticmethod
    def townsquare_command() -> list[str]:
        return [sys.executable, "-c", "from townsquare.cli import main; main()"]

    def up(self, echo: Callable[[str], None] = lambda _line: None) -> None:
        """Start every node that is not running; initialise the cluster on first use."""
        for program in ("etcd", "patroni", "haproxy", "redis-server"):
            require(program)
        self.root.mkdir(parents=True, exist_ok=True)
        echo("etcd")
        for node in self.layout.of_role("etcd"):
            self.start_node(node)
        for node in self.layout.of_role("etcd"):
            wait_until(f"{node.name} health", functools.partial(self.etcd_healthy, node))
        echo("PostgreSQL (Patroni)")
        postgres = self.layout.of_role("postgres")
        first_run = not (self.layout.directory(postgres[0]) / "data").exists()
        if first_run:
            # The first member bootstraps (initdb) before the others clone it.
            self.start_node(postgres[0])
            wait_until("the first PostgreSQL member", lambda: self.primary() is not None)
        for node in postgres:
            self.start_node(node)
        wait_until("a PostgreSQL primary", lambda: self.primary() is not None)
        wait_until("both PostgreSQL standbys streaming", self.standbys_streaming)
        self._apply_dynamic_config()
        self._create_database()
        echo("Redis and Sentinel")
        for node in self.layout.of_role("redis"):
            self.start_node(node)
        for node in self.layout.of_role("sentinel"):
            self.start_node(node)
        echo("HAProxy")
        self.start_node(self.layout.node("haproxy"))
        wait_until("HAProxy's PostgreSQL routing", self.haproxy_routes_writes)
        echo("schema")
        self._migrate()
        echo("app nodes")
        for node in self.layout.of_role("app"):
            self.start_node(node)
        for node in self.layout.of_role("app"):
            wait_until(f"{node.name} ready", functools.partial(self.app_ready, node))
        wait_until("HAProxy's app routing", self.cluster_ready)

    def _apply_dynamic_config(self) -> None:
        primary = self.primary()
        assert primary is not None
        body = json.dumps(configs.patroni_dynamic_config()).encode()
        request = urllib.request.Request(
            self.layout.patroni_url(primary) + "/config",
            data=body,
            method="PATCH",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise ClusterError(f"Patroni refused the configuration: {response.status}")

    def _create_database(self) -> None:
        primary = self.primary()
        assert primary is not None
        sql = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"
        if self.psql(primary, sql).strip() != "1":
            self.psql(primary, f"CREATE DATABASE {DATABASE_NAME}")

    def psql(self, node: Node, sql: str, database: str = "postgres") -> str:
        command = [
            str(Path(postgres_bin_dir()) / "psql"),
            "-h",
            node.address,
            "-p",
            str(POSTGRES_PORT),
            "-U",
            "postgres",
            "-d",
            database,
            "-XAtq",
            "-c",
            sql,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise ClusterError(f"psql on {node.name} failed: {result.stderr.strip()}")
        return result.stdout

    def _migrate(self) -> None:
        env = {**os.environ, "TOWNSQUARE_DATA_DIR": str(self.root / "shared")}
        command = [
            *self.townsquare_command(),
            "migrate",
            "--database-url",
            self.layout.write_url,
        ]
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise ClusterError(f"migrations failed: {result.stderr.strip()}")

    # -- stopping ---------------------------------------------------------------------------
    def kill_node(self, node: Node | str) -> list[int]:
        """``kill -9`` every process group of the node; returns the groups killed."""
        groups = self.node_groups(node)
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        name = node if isinstance(node, str) else node.name
        self._reap(name)
        return groups

    def kill_postmaster(self, node: Node | str) -> int | None:
        """``kill -9`` PostgreSQL's postmaster alone, leaving Patroni and the backends."""
        pid = self.postmaster_pid(node)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        return pid

    def stop_node(self, node: Node | str) -> None:
        groups = self.node_groups(node)
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(group_alive(pgid) for pgid in groups):
            time.sleep(0.1)
        self.kill_node(node)
        name = node if isinstance(node, str) else node.name
        self._save_group(name, None)

    def _reap(self, name: str) -> None:
        child = self._children.pop(name, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._children[name] = child

    def down(self) -> None:
        """Stop every node: the app first, the database and etcd last."""
        order = ("app", "haproxy", "sentinel", "redis", "postgres", "etcd")
        for role in order:
            for node in self.layout.of_role(role):
                self.stop_node(node)

    # -- looking ----------------------------------------------------------------------------
    def etcd_healthy(self, node: Node) -> bool:
        status, body = http_get(f"http://{node.address}:{ETCD_CLIENT_PORT}/health")
        return status == 200 and b"true" in body

    def etcd_leader(self) -> Node | None:
        for node in self.layout.of_role("etcd"):
            url = f"http://{node.address}:{ETCD_CLIENT_PORT}/v3/maintenance/status"
            request = urllib.request.Request(url, data=b"{}", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=1) as response:
                    answer = json.loads(response.read())
            except (OSError, ValueError):
                continue
            if answer.get("leader") and answer.get("leader") == answer["header"].get("member_id"):
                return node
        return None

    def patroni(self, node: Node) -> dict[str, Any] | None:
        status, body = http_get(self.layout.patroni_url(node) + "/patroni")
        if status == 0 or not body:
            return None
        try:
            data: dict[str, Any] = json.loads(body)
        except ValueError:
            return None
        return data

    def primary(self) -> Node | None:
        for node in self.layout.of_role("postgres"):
            status, _ = http_get(self.layout.patroni_url(node) + "/primary", method="OPTIONS")
            if status == 200:
                return node
        return None

    def standbys_streaming(self) -> bool:
        """Every PostgreSQL member is up, and every standby is a synchronous one."""
        primary = self.primary()
        if primary is None:
            return False
        for node in self.layout.of_role("postgres"):
            if node == primary:
                continue
            status, _ = http_get(self.layout.patroni_url(node) + "/sync", method="OPTIONS")
            if status != 200:
                return False
        return True

    def haproxy_routes_writes(self) -> bool:
        import socket

        try:
            with socket.create_connection(
                (self.layout.haproxy, HAPROXY_WRITE_PORT), timeout=1
            ) as connection:
                # An SSLRequest: a live PostgreSQL answers one byte, "N" or "S".
                connection.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
                return connection.recv(1) in (b"N", b"S")
        except OSError:
            return False

    def app_ready(self, node: Node) -> bool:
        status, _ = http_get(f"http://{node.address}:{APP_PORT}/readyz")
        return status == 200

    def cluster_ready(self) -> bool:
        status, _ = http_get(f"{self.layout.base_url}/readyz")
        return status == 200

    def redis_role(self, node: Node) -> str | None:
        from redis import Redis
        from redis.exceptions import RedisError

        client = Redis(host=node.address, port=REDIS_PORT, socket_timeout=0.5)
        try:
            info = client.info("replication")
            return str(info.get("role"))
        except (RedisError, OSError):
            return None
        finally:
            client.close()

    def redis_answers(self, node: Node) -> bool:
        return self.redis_role(node) is not None

    def redis_master(self) -> str | None:
        """The master's address according to the first Sentinel that answers."""
        from redis import Redis
        from redis.exceptions import RedisError

        for node in self.layout.of_role("sentinel"):
            client = Redis(host=node.address, port=SENTINEL_PORT, socket_timeout=0.5)
            try:
                answer = client.sentinel_get_master_addr_by_name(SCOPE, return_responses=True)
            except (RedisError, OSError):
                continue
            finally:
                client.close()
            if isinstance(answer, tuple | list) and answer:
                first = answer[0]
                return first.decode() if isinstance(first, bytes) else str(first)
        return None

    def status(self) -> list[dict[str, Any]]:
        """One row per node: whether it runs and what it is doing."""
        rows: list[dict[str, Any]] = []
        for node in self.layout.nodes:
            running = bool(self.node_groups(node))
            detail = ""
            if node.role == "etcd" and running:
                detail = "healthy" if self.etcd_healthy(node) else "unhealthy"
            elif node.role == "postgres" and running:
                info = self.patroni(node) or {}
                detail = f"{info.get('role', '?')} {info.get('state', '?')}"
                if "timeline" in info:
                    detail += f" timeline {info['timeline']}"
                status, _ = http_get(self.layout.patroni_url(node) + "/sync", method="OPTIONS")
                if status == 200:
                    detail += " (synchronous)"
            elif node.role == "redis" and running:
                detail = self.redis_role(node) or "not answering"
            elif node.role == "app" and running:
                detail = "ready" if self.app_ready(node) else "not ready"
            elif node.role == "haproxy" and running:
                detail = f"http://{node.address}:{HAPROXY_HTTP_PORT}"
            elif node.role == "sentinel" and running:
                master = self.redis_master()
                detail = f"master {master}" if master else ""
            rows.append(
                {
                    "node": node.name,
                    "role": node.role,
                    "address": node.address,
                    "running": running,
                    "detail": detail,
                }
            )
        return rows

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until every node runs and the database has its primary and synchronous standbys."""
        wait_until("a PostgreSQL primary", lambda: self.primary() is not None, timeout)
        wait_until("both PostgreSQL standbys synchronous", self.standbys_streaming, timeout)
        wait_until("the app behind HAProxy", self.cluster_ready, timeout)
        for node in self.layout.of_role("app"):
            wait_until(f"{node.name} ready", functools.partial(self.app_ready, node), timeout)
        for node in self.layout.of_role("redis"):
            wait_until(node.name, functools.partial(self.redis_answers, node), timeout)

    def postgres_port(self) -> int:
        return POSTGRES_PORT
