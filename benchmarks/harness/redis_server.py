"""A throwaway redis-server on a loopback port, for benchmarks and tests alike.

Kept free of redis-py and of the rest of the harness so ``tests/redis_server.py`` can use it
without pulling benchmark code in. The server is stopped through its own Popen (its pid),
never by name.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
"""Every server listens here only."""


def free_port() -> int:
    """A TCP port free on the loopback address right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server we started; stopped by its own pid, never by name.

    ``extra`` is appended to the command line (later options override earlier ones).
    ``stop()`` and ``kill()`` keep the data directory so ``start()`` again finds the data;
    ``remove()`` deletes it.
    """

    port: int = field(default_factory=free_port)
    appendonly: bool = False
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    directory: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="cd-redis-"))

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        return [
            binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", self.directory,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            *self.extra,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start and wait until the port accepts connections (TLS-only servers included)."""
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._owner = os.getpid()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the server (a crash), keeping its data directory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, a bounded wait, then SIGKILL."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()

    def remove(self) -> None:
        """Stop (if running) and delete the data directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *_exc: Any) -> None:
        self.remove()

    def __del__(self) -> None:
        proc = getattr(self, "proc", None)
        if proc is not None and os.getpid() == getattr(self, "_owner", os.getpid()):
            proc.kill()


def bench_server() -> RedisServer:
    """The benchmarks' server: no persistence at all, protected mode on."""
    return RedisServer(
        appendonly=False,
        extra=["--protected-mode", "yes"],
        directory=tempfile.mkdtemp(prefix="bench-redis-"),
    )
