#!/usr/bin/env python
"""Countdown lateness of a prefork worker: how long after its ETA a countdown task starts.

    python benchmarks/countdown_lateness.py [--n 200] [--spacing-ms 10] [--idle-seconds 10]
                                            [--busy] [--only a|b|c] [--json PATH]

Starts its own ``redis-server`` on a free loopback port and a ``celery-docket`` worker
(``-P prefork -c 2``) running this file as its app, then, with the worker idle:

* measures the worker tree's and redis-server's CPU over ``--idle-seconds`` (busy polling
  would show here);
* (a) burst: ``--n`` ``stamp.apply_async(countdown=1)`` sent back to back;
* (b) spaced: ``--n`` ``stamp.apply_async(countdown=2)`` sent ``--spacing-ms`` apart;
* (c) with ``--busy``: (b) again while one child runs a task that holds the GIL throughout
  (the other child must take the countdowns on time; its movers must not wait on the busy one).

Lateness = ``time.time()`` at the task body's start - ``request.eta`` (one machine, one clock).
A negative lateness is an early start: it is counted and the run exits 1. Everything it
started is stopped by pid at the end; each wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BROKER = os.environ.get("CDL_BROKER_URL", "redis://127.0.0.1:6379/0")

# -- the app the worker runs (this module, imported by ``celery-docket -A``) ----------------

from celery_docket import Celery, signals  # noqa: E402 - the app part of this file

app = Celery("countdown_lateness", broker=BROKER, backend=BROKER)
app.conf.update(task_serializer="json", accept_content=["json"], worker_hijack_root_logger=True)
_side: dict[int, redis.Redis] = {}


def side() -> redis.Redis:
    """One connection per process for the stamps (prefork children included)."""
    conn = _side.get(os.getpid())
    if conn is None:
        conn = _side[os.getpid()] = redis.Redis.from_url(BROKER)
    return conn


@signals.worker_ready.connect
def _ready(sender: object = None, **_kw: object) -> None:
    side().set("cdl:ready", "1")


@app.task(bind=True, ignore_result=True, name="countdown_lateness.stamp")
def stamp(self: Any, tag: str) -> None:
    """Record the body's start time first, then the ETA the request carries."""
    started = time.time()
    side().rpush("cdl:stamps", json.dumps([tag, started, self.request.eta, os.getpid()]))


@app.task(ignore_result=True, name="countdown_lateness.burn")
def burn(seconds: float) -> None:
    """Pure-Python work holding the GIL (the busy child of phase c)."""
    end, x = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        for i in range(1000):
            x = (x * 31 + i) % 1_000_003


# -- the driver ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu(pid: int) -> float:
    """User+system CPU seconds of one process (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


class Redis:
    """A throwaway redis-server; stopped by its own pid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="countdown-lateness-")
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
        self.proc = subprocess.Popen(
            [*args, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if self.client.ping():
                    return
            time.sleep(0.05)
        self.stop()
        raise SystemExit("redis-server did not start")

    def cpu(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class WorkerProc:
    """The ``celery-docket`` CLI worker, in its own session; stopped by pid."""

    def __init__(self, url: str, concurrency: int, log_path: str) -> None:
        exe = Path(sys.executable).parent / "celery-docket"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "celery_docket"]
        cmd += ["-A", "countdown_lateness", "worker", "-P", "prefork"]
        cmd += ["-c", str(concurrency), "-l", "WARNING"]
        env = dict(os.environ, CDL_BROKER_URL=url, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(ROOT)) if p)
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids: set[int] = set()

    def tree(self) -> list[int]:
        pids = tree(self.proc.pid) if self.proc.poll() is None else []
        self.pids.update(pids)
        return pids

    def tail(self) -> str:
        return " | ".join(Path(self.log_path).read_text().splitlines()[-5:])

    def wait_ready(self, r: redis.Redis, processes: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if r.get("cdl:ready") and len(self.tree()) >= processes:
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"worker exited {self.proc.returncode}: {self.tail()}")
            time.sleep(0.05)
        raise SystemExit(f"worker not ready in {timeout:.0f}s: {self.tail()}")

    def stop(self) -> None:
        self.tree()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        for pid in self.pids:  # only the processes this worker tree had
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.log.close()


def collect(r: redis.Redis, prefix: str, n: int, timeout: float) -> list[float]:
    """Wait (bounded) for ``n`` stamps tagged ``prefix``; their lateness in ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [json.loads(x) for x in r.lrange("cdl:stamps", 0, -1)]
        mine = [row for row in rows if str(row[0]).startswith(prefix)]
        if len(mine) >= n:
            if os.environ.get("CDL_DUMP"):
                Path(os.environ["CDL_DUMP"] + prefix).write_text(json.dumps(mine))
            return [
                (started - datetime.fromisoformat(eta).timestamp()) * 1000.0
                for _tag, started, eta, _pid in mine
                if eta is not None  # the warm-up's task without a countdown
            ]
        time.sleep(0.1)
    raise SystemExit(f"{prefix}: only {len(mine)} of {n} tasks ran within {timeout:.0f}s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def command_calls(r: redis.Redis) -> dict[str, int]:
    """Calls per Redis command so far (``INFO commandstats``)."""
    stats = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def per_task(before: dict[str, int], after: dict[str, int], n: int) -> str:
    """Redis commands per task between two ``command_calls`` (the harness's own included)."""
    diff = {k: (v - before.get(k, 0)) / n for k, v in after.items() if v > before.get(k, 0)}
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(diff.items(), key=lambda kv: -kv[1]))


def report(name: str, late: list[float]) -> dict[str, Any]:
    early = [v for v in late if v < 0]
    row = {
        "n": len(late),
        "p50_ms": round(statistics.median(late), 2),
        "p99_ms": round(percentile(late, 99), 2),
        "max_ms": round(max(late), 2),
        "min_ms": round(min(late), 2),
        "early": len(early),
    }
    flag = f"  EARLY x{len(early)}" if early else ""
    print(
        f"{name:<28} p50 {row['p50_ms']:7.2f}  p99 {row['p99_ms']:7.2f}  "
        f"max {row['max_ms']:7.2f}  min {row['min_ms']:7.2f} ms{flag}"
    )
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="tasks per phase (200)")
    p.add_argument("--spacing-ms", type=float, default=10.0, help="spacing of phase b (10)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window (10)")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--only", choices=("a", "b", "c"), help="run one phase only")
    p.add_argument(
        "--busy", action="store_true", help="also (c): phase b while one child burns CPU"
    )
    p.add_argument("--json", metavar="PATH", help="also write the results here")
    args = p.parse_args()

    server = Redis()
    logdir = tempfile.mkdtemp(prefix="countdown-lateness-log-")
    worker: WorkerProc | None = None
    results: dict[str, Any] = {}
    try:
        r = server.client
        os.environ["CDL_BROKER_URL"] = server.url
        sys.path.insert(0, str(HERE))
        module = importlib.import_module("countdown_lateness")  # the app on this server
        task = module.stamp
        worker = WorkerProc(server.url, args.concurrency, os.path.join(logdir, "worker.log"))
        worker.wait_ready(r, args.concurrency + 1)
        task.apply_async(args=("warm-0",))  # children import and connect before timing
        task.apply_async(args=("warm-1",), countdown=0.2)
        collect(r, "warm", 2, 30)
        time.sleep(1.0)

        pids = worker.tree()
        if args.idle_seconds > 0:
            cpu0, rcpu0, t0 = sum(map(proc_cpu, pids)), server.cpu(), time.monotonic()
            time.sleep(args.idle_seconds)
            window = time.monotonic() - t0
            worker_cpu = sum(map(proc_cpu, pids)) - cpu0
            redis_cpu = server.cpu() - rcpu0
            results["idle"] = {
                "seconds": round(window, 2),
                "worker_cpu_s": round(worker_cpu, 3),
                "redis_cpu_s": round(redis_cpu, 3),
            }
            print(
                f"idle {window:.1f}s: worker tree ({len(pids)} processes) CPU "
                f"{worker_cpu:.3f}s, redis-server CPU {redis_cpu:.3f}s "
                f"({100 * (worker_cpu + redis_cpu) / window:.2f}% of one core)"
            )

        spaced = f"(b) {args.n} x countdown=2, {args.spacing_ms:g} ms apart"
        wanted = args.only or ("abc" if args.busy else "ab")
        phases = [
            ("burst", f"(a) burst {args.n} x countdown=1", 1.0, 0.0),
            ("spaced", spaced, 2.0, args.spacing_ms / 1000.0),
            ("busy", "(c) as (b), one child busy", 2.0, args.spacing_ms / 1000.0),
        ]
        for (key, title, countdown, spacing), letter in zip(phases, "abc", strict=True):
            if letter not in wanted:
                continue
            if key == "busy":  # a task holding the GIL for the whole phase in one child
                module.burn.apply_async(args=(4.0 + args.n * spacing,))
                time.sleep(0.2)
            calls, wcpu, rcpu = command_calls(r), sum(map(proc_cpu, pids)), server.cpu()
            sent = next_at = time.monotonic()
            for i in range(args.n):
                next_at += spacing
                time.sleep(max(0.0, next_at - time.monotonic()))
                task.apply_async(args=(f"{key}-{i}",), countdown=countdown)
            print(f"{title}: sent in {1000 * (time.monotonic() - sent):.0f} ms")
            results[key] = report(title, collect(r, key, args.n, 60))
            wcpu, rcpu = sum(map(proc_cpu, pids)) - wcpu, server.cpu() - rcpu
            print(f"    Redis calls per task: {per_task(calls, command_calls(r), args.n)}")
            print(
                f"    CPU per task: worker tree {1000 * wcpu / args.n:.2f} ms, "
                f"redis-server {1000 * rcpu / args.n:.2f} ms (sending and waiting included)"
            )
            time.sleep(0.5)
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        shutil.rmtree(logdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    early = sum(row["early"] for key, row in results.items() if key != "idle")
    return 1 if early else 0


if __name__ == "__main__":
    sys.exit(main())
