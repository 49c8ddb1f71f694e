"""The peers' drain: ``n`` no-ops queued, then the time 2 worker processes take to run them.

Same shape as compare.py's workload 2: prefill first, then start the library's own worker
CLI; the clock starts when the first message leaves the queue and stops when Redis holds
none queued or in flight (polled every ``poll`` seconds). CPU per task is the worker process
trees' user+sys over that window (/proc; a pool process forked inside it counts whole) plus
redis-server's (``INFO cpu``), divided by ``n``.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import redis

from benchmarks.harness.cpu import LoadMeter
from benchmarks.harness.procs import process_tree, spawn, stop_group, tree_cpu_seconds
from benchmarks.harness.redis_data import wipe

ROOT = Path(__file__).resolve().parents[2]


class Skipped(Exception):
    """The peer cannot run here; the message is the note under the table."""


def load(name: str, url: str) -> ModuleType:
    """Import ``benchmarks.peers.<name>_peer`` with its app pointed at ``url``."""
    os.environ["BENCH_BROKER_URL"] = url
    try:
        return importlib.import_module(f"benchmarks.peers.{name}_peer")
    except ImportError as exc:
        extra = "pip install -e '.[bench-peers]'" if name != "ardiq" else "not on PyPI"
        raise Skipped(f"{name} skipped: {exc} ({extra})") from exc


def _tree(procs: list[Any]) -> list[int]:
    return [p for proc in procs if proc.poll() is None for p in process_tree(proc.pid)]


def drain(
    name: str, url: str, n: int, logdir: str, poll: float = 0.005, timeout: float = 120.0
) -> dict[str, Any]:
    """One drain of ``n`` no-ops by peer ``name`` on the (empty, owned) database at ``url``."""
    peer = load(name, url)
    r: Any = redis.Redis.from_url(url)
    wipe(r)
    t = time.perf_counter()
    peer.prefill(n)
    enqueue_rate = n / (time.perf_counter() - t)
    queued = peer.remaining(r)
    if queued < n:
        raise RuntimeError(f"{name}: {queued} of {n} queued after the prefill")
    env = dict(os.environ, BENCH_BROKER_URL=url, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    log = open(os.path.join(logdir, f"{name}.log"), "w")  # noqa: SIM115 - closed below
    procs = [
        spawn(cmd, cwd=ROOT, env=env, stdin=-3, stdout=log, stderr=-2)
        for cmd in peer.worker_commands(url)
    ]
    try:
        deadline = time.monotonic() + timeout
        while peer.remaining(r) >= n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"{name}: workers did not start taking tasks (see {log.name})")
            time.sleep(poll)
        t0 = time.perf_counter()
        pids0 = _tree(procs)
        meter = LoadMeter(r, pids0)
        cpu0 = tree_cpu_seconds(pids0)
        while peer.remaining(r) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: {peer.remaining(r)} left after {timeout:.0f}s")
            time.sleep(poll)
        elapsed = time.perf_counter() - t0
        pids1 = _tree(procs)
        worker_cpu = tree_cpu_seconds(pids1) - cpu0
        redis_cpu = meter.redis_cpu()
        foreign = meter.cores()
    finally:
        for proc in procs:
            stop_group(proc, timeout=15)
        log.close()
        wipe(r)
    return {
        "enqueue_rate": enqueue_rate,
        "queued": queued,
        "elapsed": elapsed,
        "rate": queued / elapsed,
        "worker_cpu_us_per_task": worker_cpu / queued * 1e6,
        "redis_cpu_us_per_task": redis_cpu / queued * 1e6,
        "foreign_cores": foreign,
        "procs": len(pids1),
        "version": _version(peer.DIST),
    }


def _version(dist: str) -> str | None:
    from benchmarks.harness.machine import version

    return version(dist)
