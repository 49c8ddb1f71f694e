"""Real Redis topologies on loopback ports for tests: Sentinel (master, replica, 3 sentinels)
and a TLS server with a CA generated in the test's directory.

Every process is one we started, stopped by its own pid. Sentinels run as
``redis-server <conf> --sentinel`` (the same binary Debian's redis-sentinel links to), so only
redis-server is needed; certificates come from the ``openssl`` command.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.redis_server import RedisServer, free_port

MASTER_NAME = "mymaster"
FAST_SYNC = ("--repl-diskless-sync-delay", "0")
"""Start a replica's full sync at once (Redis 7 waits 5 s for more replicas by default)."""


def wait_for(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``pred`` until truthy (errors count as not yet); bounded in time."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = pred()
            if value:
                return value
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


@dataclass
class SentinelProc:
    """One sentinel (``redis-server <conf> --sentinel``) on a loopback port."""

    master_port: int
    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    down_after_ms: int = 1000
    tls: Certificates | None = None

    def start(self) -> SentinelProc:
        conf = self.directory / f"sentinel-{self.port}.conf"
        if self.tls is None:
            listen = f"port {self.port}\n"
        else:  # TLS to clients, and to the master and replicas it monitors
            listen = f"port 0\ntls-port {self.port}\n" + "".join(
                f"{tls_args(self.tls)[i][2:]} {tls_args(self.tls)[i + 1]}\n"
                for i in range(0, len(tls_args(self.tls)), 2)
            )
        conf.write_text(
            f"{listen}bind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        log = open(self.directory / f"sentinel-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        wait_for(self.client().ping, 10, f"sentinel on {self.port}")
        return self

    def client(self) -> Any:
        return client(self.port, self.tls)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@dataclass
class SentinelTopology:
    """A master, one replica and three sentinels (quorum 2), all on 127.0.0.1."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cd-sentinel-")))
    servers: list[RedisServer] = field(default_factory=list)
    sentinels: list[SentinelProc] = field(default_factory=list)
    tls: Certificates | None = None
    """Every server and sentinel speaks only TLS (replication too), with these certificates."""

    def _server(self, *extra: str) -> RedisServer:
        port = free_port()
        listen = [] if self.tls is None else ["--port", "0", "--tls-port", str(port)]
        tls = [] if self.tls is None else tls_args(self.tls)
        return RedisServer(port=port, extra=[*listen, *tls, *FAST_SYNC, *extra]).start()

    def start(self) -> SentinelTopology:
        master = self._server()
        self.servers.append(master)
        self.servers.append(self._server("--replicaof", "127.0.0.1", str(master.port)))
        for _ in range(3):
            self.sentinels.append(SentinelProc(master.port, self.directory, tls=self.tls).start())
        self.wait_settled(master.port)
        return self

    def wait_settled(self, master_port: int, replicas: int = 1, timeout: float = 30) -> None:
        """Every sentinel agrees on the master, sees the replica(s) and the other sentinels,
        and the replicas' links are up (so a failover can pick one)."""

        def settled() -> bool:
            for s in self.sentinels:
                state = s.client().sentinel_master(MASTER_NAME)
                if int(state["port"]) != master_port or "s_down" in state["flags"]:
                    return False
                if int(state["num-slaves"]) < replicas or int(state["num-other-sentinels"]) < 2:
                    return False
            info = client(master_port, self.tls).info("replication")
            return int(info.get("connected_slaves", 0)) >= replicas and all(
                info[f"slave{i}"]["state"] == "online" for i in range(replicas)
            )

        wait_for(settled, timeout, f"sentinels to settle on master port {master_port}")

    @property
    def url(self) -> str:
        """Celery's form: one ``sentinel://`` address per sentinel, joined by ``;``."""
        return ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in self.sentinels)

    def master_port(self) -> int:
        host, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def failover(self, *, kill: bool, lag: float = 0.0, timeout: float = 30) -> int:
        """Fail the master over (SIGKILL it, or ``SENTINEL FAILOVER``); returns the new port.

        ``lag`` > 0 (with ``kill``) cuts the replica off that long before the master is killed:
        it is frozen (SIGSTOP, so it cannot reconnect) and the master drops its link (so
        nothing waits in a socket buffer for it); it is thawed right after the kill. Every
        write of those seconds was acknowledged by the master and never reached the replica:
        the replication window, made visible.
        """
        old = self.master_port()
        if kill:
            replica = next(s for s in self.servers if s.port != old and s.proc is not None)
            assert replica.proc is not None
            if lag:
                os.kill(replica.proc.pid, signal.SIGSTOP)
                client(old, self.tls).client_kill_filter(_type="replica")
                time.sleep(lag)
            self.server(old).kill()
            if lag:
                os.kill(replica.proc.pid, signal.SIGCONT)
        else:
            self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)

        def promoted() -> int | None:
            ports = {p for p in (self._master_of(s) for s in self.sentinels) if p}
            if len(ports) != 1 or old in ports:
                return None
            new = ports.pop()
            role = client(new, self.tls).info("replication")["role"]
            return new if role == "master" else None

        return int(wait_for(promoted, timeout, "a new master"))

    @staticmethod
    def _master_of(s: SentinelProc) -> int | None:
        addr = s.client().sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(addr[1]) if addr else None

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        for r in self.servers:
            r.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass
class Certificates:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client one."""

    directory: Path

    @property
    def ca(self) -> str:
        return str(self.directory / "ca.crt")

    def cert(self, name: str) -> str:
        return str(self.directory / f"{name}.crt")

    def key(self, name: str) -> str:
        return str(self.directory / f"{name}.key")

    @classmethod
    def generate(cls, directory: Path) -> Certificates:
        if shutil.which("openssl") is None:
            raise RuntimeError("openssl is not installed")
        directory.mkdir(parents=True, exist_ok=True)
        d = directory
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=celery-docket test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for name in ("server", "client"):
            _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                     "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
            _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                     "-CAcreateserial", "-days", "2", "-extfile", "san.ext",
                     "-out", f"{name}.crt", cwd=d)  # fmt: skip
        return cls(d)


def tls_server(certs: Certificates, *, client_certs: bool) -> RedisServer:
    """A redis-server that speaks only TLS on its port (``--port 0``)."""
    port = free_port()
    args = tls_args(certs, client_certs=client_certs)
    return RedisServer(port=port, extra=["--port", "0", "--tls-port", str(port), *args]).start()


def tls_args(certs: Certificates, *, client_certs: bool = False) -> list[str]:
    """redis-server options for TLS with ``certs`` (replication over TLS too)."""
    return [
        "--tls-cert-file", certs.cert("server"), "--tls-key-file", certs.key("server"),
        "--tls-ca-cert-file", certs.ca, "--tls-auth-clients", "yes" if client_certs else "no",
        "--tls-replication", "yes",
    ]  # fmt: skip


def client(port: int, tls: Certificates | None = None) -> Any:
    """A plain redis-py client of a test server (TLS, verifying our CA, when ``tls``)."""
    if tls is None:
        return redis.Redis(port=port, socket_timeout=2)
    return redis.Redis(port=port, socket_timeout=2, ssl=True, ssl_ca_certs=tls.ca)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
