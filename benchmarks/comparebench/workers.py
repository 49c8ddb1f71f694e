"""The worker CLIs compare.py runs, with their process trees' memory and CPU from /proc."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from benchmarks.comparebench.common import (
    APP,
    ENTRY,
    ROOT,
    Failed,
    child_env,
    script,
)
from benchmarks.harness.log import progress
from benchmarks.harness.procs import proc_start, process_tree, status_kb, stop_tree


def worker_command(system: str, pool: str, concurrency: int, profile_dir: str | None) -> list[str]:
    if system == "celery":
        exe = script("celery")
        base = [exe] if exe else [sys.executable, "-m", "celery"]
        return [
            *base,
            "-A",
            APP[system],
            "worker",
            "-P",
            pool,
            "-c",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ]
    exe = script("celery-docket")
    if exe and not profile_dir:
        return [
            exe,
            "-A",
            APP[system],
            "worker",
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-l",
            "WARNING",
        ]
    cmd = [sys.executable, str(ENTRY), "--role", "docket-worker"]
    cmd += ["--system", system, "--pool", pool, "--concurrency", str(concurrency)]
    if profile_dir:
        cmd += ["--profile-dir", profile_dir]
    return cmd


class WorkerProc:
    """A worker CLI in its own session; its process tree, memory and CPU from /proc."""

    def __init__(
        self,
        system: str,
        url: str,
        pool: str,
        concurrency: int,
        logdir: str,
        profile_dir: str | None = None,
    ) -> None:
        self.system = system
        self.cmd = worker_command(system, pool, concurrency, profile_dir)
        self.expect = 1 if pool == "solo" else concurrency + 1
        self.log_path = os.path.join(logdir, f"{system}-{pool}-{uuid.uuid4().hex[:6]}.log")
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.started = time.time()
        self.proc = subprocess.Popen(
            self.cmd,
            env=child_env(url),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.known: dict[int, int | None] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tree(self) -> list[int]:
        pids = process_tree(self.proc.pid) if self.alive() else []
        for p in pids:
            self.known.setdefault(p, proc_start(p))
        return pids

    def rss_kb(self) -> tuple[int, int, int]:
        """(sum of VmRSS, sum of Pss, processes) over the tree."""
        pids = self.tree()
        rss = sum(status_kb(p, "VmRSS") for p in pids)
        pss = sum(status_kb(p, "Pss", "smaps_rollup") for p in pids)
        return rss, pss, len(pids)

    def tail(self, lines: int = 6) -> str:
        with contextlib.suppress(OSError), open(self.log_path) as fh:
            return " | ".join(ln.rstrip() for ln in fh.readlines()[-lines:])
        return ""

    def wait_ready(self, r: Any, timeout: float = 60.0) -> float:
        """Until the app's ``worker_ready`` mark and the whole pool is up; returns its time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = r.lindex("bench:ready", 0)
            if raw is not None and len(self.tree()) >= self.expect:
                return float(json.loads(raw)[0])
            if not self.alive():
                raise Failed(f"{self.system} worker exited {self.proc.returncode}: {self.tail()}")
            time.sleep(0.02)
        raise Failed(f"{self.system} worker not ready within {timeout:.0f}s: {self.tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (warm shutdown for both), bounded wait, then SIGKILL what is left."""
        self.tree()
        if not stop_tree(self.proc, self.known, timeout=timeout):
            progress(f"  {self.system} worker {self.pid} did not stop in {timeout:.0f}s: killed")
        self.log.close()
        return self.proc.returncode
