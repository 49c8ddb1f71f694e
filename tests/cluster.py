"""A throwaway 3-master Redis Cluster on loopback ports, for the cluster topology tests.

Each node is a ``RedisServer`` (its own port and data dir, stopped by its own pid) started
with ``--cluster-enabled yes``; ``redis-cli --cluster create`` assigns the slots (and, with
``replicas=1``, a replica to each master) and the launcher waits until every node reports
``cluster_state:ok``. ``kill_master`` is the failover test's ``kill -9``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field

import redis

from tests.redis_server import RedisServer, free_port

HOST = "127.0.0.1"


def cluster_port() -> int:
    """A free port whose bus port (port + 10000, also free) fits in 16 bits."""
    while True:
        port = free_port()
        if port <= 55535 and _free(port + 10000):
            return port


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class ClusterTopology:
    """Three masters (and ``replicas`` replicas of each); ``url`` is the ``redis+cluster://``
    form naming every node."""

    size: int = 3
    replicas: int = 0
    node_timeout_ms: int = 5000
    nodes: list[RedisServer] = field(default_factory=list)
    killed: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30.0) -> ClusterTopology:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed")
        try:
            for _ in range(self.size * (1 + self.replicas)):
                node = RedisServer(port=cluster_port())
                node.extra = [
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"{node.directory}/nodes.conf",
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                ]  # fmt: skip
                self.nodes.append(node.start())
            addresses = [f"{HOST}:{n.port}" for n in self.nodes]
            extra = ["--cluster-replicas", str(self.replicas)] if self.replicas else []
            subprocess.run(
                [cli, "--cluster", "create", *addresses, *extra, "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
            )
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says ``cluster_state:ok`` (slots assigned and agreed) and,
        with replicas, every master has its replica attached (a failover needs one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._ok(n) for n in self.nodes) and self._replicated():
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        try:
            with redis.Redis(HOST, node.port, socket_timeout=1) as r:
                info = r.execute_command("CLUSTER INFO")
        except redis.RedisError:
            return False
        if isinstance(info, dict):  # redis-py parses the reply
            return str(info.get("cluster_state")) == "ok"
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text

    def _replicated(self) -> bool:
        if not self.replicas or self.killed:
            return True
        try:
            with redis.Redis(HOST, self.nodes[0].port, socket_timeout=1) as r:
                shards = r.execute_command("CLUSTER SLOTS")
        except redis.RedisError:
            return False
        return len(shards) == self.size and all(len(s) >= 4 for s in shards)

    def kill_master(self, master: RedisServer) -> RedisServer:
        """``kill -9`` a master; returns its replica (to be promoted). Keeps its data dir for
        ``stop`` to remove."""
        with redis.Redis(HOST, master.port) as r:
            rows = r.execute_command("CLUSTER SLOTS")
        row = next(row for row in rows if int(row[2][1]) == master.port)
        replica = next(n for n in self.nodes if n.port == int(row[3][1]))
        master.kill()
        self.nodes.remove(master)
        self.killed.append(master)
        return replica

    def is_master(self, node: RedisServer) -> bool:
        with redis.Redis(HOST, node.port, socket_timeout=1) as r:
            return r.execute_command("INFO", "replication").get("role") == "master"

    def node_of(self, slot: int) -> RedisServer:
        """The master serving ``slot`` now."""
        with redis.Redis(HOST, self.nodes[0].port) as r:
            for start, end, primary, *_replicas in r.execute_command("CLUSTER SLOTS"):
                if int(start) <= slot <= int(end):
                    return next(n for n in self.nodes if n.port == int(primary[1]))
        raise LookupError(f"no node serves slot {slot}")

    def migrate_slot(self, slot: int, target: RedisServer, *, pause: float = 0.0) -> int:
        """Move ``slot`` to ``target`` the way ``redis-cli --cluster reshard`` does (IMPORTING,
        MIGRATING, MIGRATE key by key, SETSLOT NODE everywhere); ``pause`` between keys keeps
        the ASK window open. Returns how many keys moved."""
        source = self.node_of(slot)
        if source is target:
            return 0
        with redis.Redis(HOST, source.port) as src, redis.Redis(HOST, target.port) as dst:
            src_id = _text(src.execute_command("CLUSTER MYID"))
            dst_id = _text(dst.execute_command("CLUSTER MYID"))
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
            moved = 0
            while True:
                keys = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 1)
                if not keys:
                    break
                src.execute_command("MIGRATE", HOST, target.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
                time.sleep(pause)
            for node in self.nodes:
                with redis.Redis(HOST, node.port) as r:
                    r.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        return moved

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(HOST, self.nodes[0].port)

    def stop(self) -> None:
        for node in self.nodes + self.killed:
            node.remove()
        self.nodes = []
        self.killed = []
