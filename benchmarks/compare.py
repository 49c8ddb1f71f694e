#!/usr/bin/env python
"""Celery 5.x vs celery_docket: the same workloads on the same Redis, in one run.

    python benchmarks/compare.py [--redis-url URL] [--quick] [--big] [--json out.json]
                                 [--chart out.svg] [--profile]

Both systems run the same task code (``benchmarks/bench_celery_app.py`` and
``benchmarks/bench_docket_app.py`` differ only in their import line) against one Redis, each
in its own database (``--celery-db`` 1, ``--docket-db`` 2). Without ``--redis-url`` a
throwaway ``redis-server`` is started on a free loopback port and stopped by its pid at the
end. With ``--redis-url`` the two databases must be empty at the start; every key in them is
deleted between steps and at the end.

Workloads (each ``--reps`` times, the systems alternating which goes first; median [min-max]):

1. enqueue: ``noop.delay()`` in a loop, 1 thread, results off (``ignore_result=True``);
   this loop is also the prefill of 2;
2. drain: the ``--tasks`` (20,000) no-ops of 1, then the CLI worker with ``-P prefork -c 2``
   (Celery: ``--without-gossip --without-mingle --without-heartbeat``); the clock runs from
   the first task's start (marked by the task) until the queue is empty with nothing unacked
   (Celery: ``LLEN celery`` + ``HLEN unacked``; celery_docket: ``XLEN`` + ``XPENDING`` of
   ``{cd:celery}:stream``/``workers``), polled every ``--poll-ms``;
3. delay->get round trip, ``--round-trips`` (1,000) sequential ``echo.delay(i).get()``,
   results on, ``-P solo``;
4. countdown lateness: a prefork -c 2 worker, idle; 200 ``stamp.apply_async(countdown=1)`` in
   one burst; lateness = the time the task body started - ``request.eta``;
5. CPU mix: 200 ``burn`` tasks of ~5 ms pure-Python work each (iterations calibrated once,
   the same for both), prefill then prefork -c 2; tasks / (last end - first start);
6. worker RSS: the sum of VmRSS over the worker's process tree, idle (the worker of 4 before
   any work) and right after the drain of 2; per process = sum / processes;
7. celery_docket only: the drain of 2 at 10k and 100k queued tasks (1M with ``--big``),
   prefilled in bulk (the facade's message, fresh ids, ``enqueue_many``).

Child processes are this same file run with a hidden ``--role`` (producers, and the worker
when the ``celery-docket`` script is missing); workers are the real CLIs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import html
import importlib.util
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402 - shared benchmark helpers beside this file
    T0,
    fmt,
    free_port,
    own_cpu_seconds,
    percentile,
    progress,
    redis_cpu_seconds,
    system_busy_seconds,
)

SYSTEMS = ("celery", "docket")
LABEL = {"celery": "Celery 5.x", "docket": "celery_docket"}
APP = {"celery": "benchmarks.bench_celery_app", "docket": "benchmarks.bench_docket_app"}
APP_FILE = {"celery": HERE / "bench_celery_app.py", "docket": HERE / "bench_docket_app.py"}
QUEUE = "celery"
DOCKET_STREAM = "{cd:celery}:stream"
DOCKET_GROUP = "workers"
COLOURS = {"celery": "#8c8c8c", "docket": "#2b6cb0"}

TARGETS = {
    "drain": ("drain rate >= 50x Celery prefork", 50.0, "ratio_ge"),
    "latency_p50": ("delay->get p50 <= 1/3 of Celery's", 1 / 3, "ratio_le"),
    "lateness_p99": ("countdown lateness p99 <= 25 ms", 25.0, "docket_le"),
    "rss_idle_per_proc": ("idle RSS per process <= Celery's", 1.0, "ratio_le"),
}


# -- small helpers (the approach of engine_bench.py, kept self-contained) -------------------


def summary(runs: Sequence[float | None]) -> dict[str, Any]:
    clean = [r for r in runs if r is not None and r == r]  # drop None/NaN (failed reps)
    if not clean:
        return {"runs": list(runs), "median": None, "min": None, "max": None}
    return {
        "runs": list(runs),
        "median": statistics.median(clean),
        "min": min(clean),
        "max": max(clean),
    }


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def proc_cpu_seconds(pid: int) -> float | None:
    """user+sys CPU seconds of a live process (all its threads)."""
    rest = proc_stat(pid)
    if rest is None:
        return None
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def proc_start(pid: int) -> int | None:
    rest = proc_stat(pid)
    return int(rest[19]) if rest else None


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as fh:
            out.extend(int(x) for x in fh.read().split())
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen or proc_stat(p) is None:
            continue
        seen.append(p)
        todo.extend(children_of(p))
    return seen


def status_kb(pid: int, field: str, path: str = "status") -> int:
    try:
        with open(f"/proc/{pid}/{path}") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class LoadMeter:
    """Cores kept busy by processes that are not ours (ours: this process, ``pids``, Redis)."""

    def __init__(self, r: Any, pids: Sequence[int] = ()) -> None:
        self.r = r
        self.pids = list(pids)
        self.t0 = time.perf_counter()
        self.sys0 = system_busy_seconds()
        self.own0 = own_cpu_seconds()
        self.redis0 = redis_cpu_seconds(r)
        self.kids0 = [proc_cpu_seconds(p) for p in self.pids]

    def pids_cpu(self) -> float | None:
        """CPU the tracked pids used since the meter started (None if one is gone)."""
        total = 0.0
        for pid, c0 in zip(self.pids, self.kids0):
            c1 = proc_cpu_seconds(pid)
            if c0 is None or c1 is None:
                return None
            total += c1 - c0
        return total

    def redis_cpu(self) -> float:
        return redis_cpu_seconds(self.r) - self.redis0

    def cores(self) -> float:
        elapsed = time.perf_counter() - self.t0
        sys1, own1 = system_busy_seconds(), own_cpu_seconds()
        kids = self.pids_cpu()
        if self.sys0 is None or sys1 is None or kids is None or elapsed <= 0:
            return float("nan")
        ours = (own1 - self.own0) + self.redis_cpu() + kids
        return max(0.0, (sys1 - self.sys0) - ours) / elapsed


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def wipe(r: Any) -> int:
    """Delete every key of this database (the bench owns it: it was empty at the start)."""
    n = 0
    batch: list[bytes] = []
    for key in r.scan_iter(count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            n += r.unlink(*batch)
            batch = []
    if batch:
        n += r.unlink(*batch)
    return n


def last_json(text: str) -> dict[str, Any]:
    for line in reversed((text or "").strip().splitlines()):
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                return doc
    return {}


class Failed(RuntimeError):
    pass


# -- the throwaway redis-server --------------------------------------------------------------


class OwnRedis:
    """A redis-server we start on a free loopback port and stop by its own pid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="compare-bench-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed; pass --redis-url")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
        args += ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# -- child processes: producers and workers ---------------------------------------------------


SNAPSHOT: str | None = None
"""A copy of celery_docket/ taken at the start; children import it (see ``take_snapshot``)."""


def take_snapshot() -> str:
    """Copy celery_docket/ to a temporary directory that goes first on every child's path.

    Other people may edit the package while a run is going; without this, workers started a
    minute apart would run different code.
    """
    directory = tempfile.mkdtemp(prefix="compare-bench-src-")
    shutil.copytree(
        ROOT / "celery_docket",
        Path(directory) / "celery_docket",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return directory


def child_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = (SNAPSHOT or "", str(ROOT), env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["BENCH_BROKER_URL"] = url
    env.pop("BENCH_RESULTS_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_role(role: str, system: str, url: str, timeout: float, *extra: str) -> dict[str, Any]:
    """Run this file as ``--role`` in a fresh process; return the JSON line it prints."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", role, "--system", system]
    cmd += [*extra]
    try:
        proc = subprocess.run(
            cmd,
            env=child_env(url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise Failed(f"{role} ({system}) did not finish within {timeout:.0f}s") from exc
    doc = last_json(proc.stdout)
    if proc.returncode != 0 or not doc:
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise Failed(f"{role} ({system}) exited {proc.returncode}: {' | '.join(tail)}")
    return doc


def script(name: str) -> str | None:
    """A console script next to this interpreter (the venv's), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


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
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", "docket-worker"]
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
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            progress(f"  {self.system} worker {self.pid} did not stop in {timeout:.0f}s: killing")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = [p for p, st in self.known.items() if st is not None and proc_start(p) == st]
            if not left:
                break
            time.sleep(0.1)
        for pid, start in self.known.items():  # only processes this worker started
            if start is not None and proc_start(pid) == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


# -- roles (child processes) -------------------------------------------------------------------


def _app(system: str) -> Any:
    return importlib.import_module(APP[system])


def role_produce(args: argparse.Namespace) -> None:
    """``--n`` sends of ``--task`` (after ``--warmup`` untimed ones); prints rate and sends."""
    m = _app(args.system)
    task = getattr(m, args.task)
    call_args: tuple[Any, ...] = () if args.task == "noop" else (args.arg,)
    for _ in range(args.warmup):
        task.delay(*call_args)
    sends: list[list[float]] = []
    cpu0 = own_cpu_seconds()
    if args.countdown_s is not None:
        t = time.perf_counter()
        for i in range(args.n):
            before = time.time()
            task.apply_async(args=(i,), countdown=args.countdown_s)
            sends.append([i, before])
        elapsed = time.perf_counter() - t
    else:
        t = time.perf_counter()
        for _ in range(args.n):
            task.delay(*call_args)
        elapsed = time.perf_counter() - t
    cpu = own_cpu_seconds() - cpu0
    doc = {"n": args.n, "elapsed": elapsed, "rate": args.n / elapsed, "cpu": cpu, "sends": sends}
    print(json.dumps(doc), flush=True)


def role_bulk_fill(args: argparse.Namespace) -> None:
    """celery_docket only: ``--n`` no-ops in bulk for the queue-size drains.

    One ``noop.delay()`` goes through the facade with the engine's ``enqueue`` captured: the
    Call it builds is the template. Every copy gets a fresh task id (the id appears in the
    body as id, root_id and correlation_id) and all go in with ``Docket.enqueue_many``.
    """
    m = _app("docket")
    docket = m.app.docket
    captured: list[Any] = []

    class _Execution:
        def __init__(self, execution_id: str) -> None:
            self.id = execution_id

    def capture(call: Any) -> _Execution:
        captured.append(call)
        return _Execution(call.execution_id)

    real = docket.enqueue
    docket.enqueue = capture
    try:
        m.noop.delay()
    finally:
        docket.enqueue = real
    template = captured[0]
    old = template.execution_id.encode()
    if template.body.count(old) < 1:
        raise SystemExit("bulk fill: task id not found in the message body")
    t = time.perf_counter()
    chunk = 10_000
    done = 0
    while done < args.n:
        calls = []
        for _ in range(min(chunk, args.n - done)):
            new = str(uuid.uuid4())
            calls.append(
                dataclasses.replace(
                    template, body=template.body.replace(old, new.encode()), execution_id=new
                )
            )
        docket.enqueue_many(calls)
        done += len(calls)
    elapsed = time.perf_counter() - t
    print(json.dumps({"n": args.n, "elapsed": elapsed, "rate": args.n / elapsed}), flush=True)


def role_latency(args: argparse.Namespace) -> None:
    m = _app(args.system)
    m.echo.delay(-1).get(timeout=60)
    for i in range(args.warmup):
        m.echo.delay(i).get(timeout=10)
    lat = []
    prof = None
    if args.profile_dir:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    for i in range(args.n):
        t = time.perf_counter()
        value = m.echo.delay(i).get(timeout=10)
        lat.append((time.perf_counter() - t) * 1e3)
        if value != i:
            raise SystemExit(f"echo({i}) returned {value!r}")
    if prof is not None:
        prof.disable()
        prof.dump_stats(os.path.join(args.profile_dir, "client.prof"))
    print(json.dumps({"latencies_ms": lat}), flush=True)


def role_calibrate(args: argparse.Namespace) -> None:
    """Iterations of the apps' ``spin`` that take ``--arg`` ms here (median of 7 runs)."""
    m = _app("celery")
    probe = 20_000
    m.spin(probe)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        m.spin(probe)
        times.append(time.perf_counter() - t)
    per_iter = statistics.median(times) / probe
    iterations = int(args.arg / 1000.0 / per_iter)
    t = time.perf_counter()
    m.spin(iterations)
    check = (time.perf_counter() - t) * 1e3
    print(json.dumps({"iterations": iterations, "check_ms": check}), flush=True)


def role_docket_worker(args: argparse.Namespace) -> None:
    """The celery_docket worker without the CLI (fallback, and the cProfiled drain)."""
    m = _app("docket")
    if args.profile_dir:
        import cProfile

        from celery_docket.engine import Worker

        real_run = Worker.run

        def profiled_run(self: Any, *a: Any, **kw: Any) -> Any:
            prof = cProfile.Profile()
            prof.enable()
            try:
                return real_run(self, *a, **kw)
            finally:
                prof.disable()
                prof.dump_stats(os.path.join(args.profile_dir, f"worker-{os.getpid()}.prof"))

        Worker.run = profiled_run  # type: ignore[method-assign]
    from celery_docket.worker import WorkController

    controller = WorkController(
        m.app, pool=args.pool, concurrency=args.concurrency, loglevel="WARNING"
    )
    sys.exit(controller.start())


ROLES: dict[str, Callable[[argparse.Namespace], None]] = {
    "produce": role_produce,
    "bulk-fill": role_bulk_fill,
    "latency": role_latency,
    "calibrate": role_calibrate,
    "docket-worker": role_docket_worker,
}


# -- the benchmark ---------------------------------------------------------------------------


class Bench:
    def __init__(self, base_url: str, args: argparse.Namespace) -> None:
        self.args = args
        self.url = {
            "celery": with_db(base_url, args.celery_db),
            "docket": with_db(base_url, args.docket_db),
        }
        self.r = {s: redis.Redis.from_url(u) for s, u in self.url.items()}
        self.raw: dict[str, Any] = {}
        self.results: dict[str, Any] = {}
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.logdir = tempfile.mkdtemp(prefix="compare-bench-logs-")
        self.iterations: int | None = None

    # -- bookkeeping ------------------------------------------------------------------------

    def order(self, rep: int) -> tuple[str, str]:
        return SYSTEMS if rep % 2 == 0 else SYSTEMS[::-1]

    def put(self, key: str, system: str, rep: int, value: Any) -> None:
        self.raw.setdefault(key, {}).setdefault(system, [None] * self.args.reps)[rep] = value

    def fail(self, where: str, exc: BaseException) -> None:
        self.failures.append(f"{where}: {exc}")
        progress(f"  {where}: FAILED: {exc}")

    def clean(self, system: str) -> None:
        wipe(self.r[system])

    def queue_state(self, system: str) -> tuple[int, int, int]:
        """(queued, unacked/pending, first-task marks)."""
        pipe = self.r[system].pipeline(transaction=False)
        if system == "celery":
            pipe.llen(QUEUE)
            pipe.hlen("unacked")
        else:
            pipe.xlen(DOCKET_STREAM)
            pipe.xpending(DOCKET_STREAM, DOCKET_GROUP)
        pipe.llen("bench:first")
        length, pending, first = pipe.execute(raise_on_error=False)
        if system == "docket":  # NOGROUP until the worker has made the group
            pending = 0 if isinstance(pending, Exception) else int(pending["pending"])
        return int(length), int(pending), int(first)

    def first_start(self, system: str) -> float:
        return min(float(json.loads(x)[0]) for x in self.r[system].lrange("bench:first", 0, -1))

    # -- 1 + 2 + 6b: enqueue, drain, RSS after the drain --------------------------------------

    def drain_once(
        self, system: str, n: int, bulk: bool, profile_dir: str | None = None
    ) -> dict[str, Any]:
        """Prefill ``n`` no-ops, start a prefork -c 2 worker, time the drain."""
        self.clean(system)
        if bulk:
            prod = run_role("bulk-fill", system, self.url[system], 600, "--n", str(n))
        else:
            prod = run_role(
                "produce", system, self.url[system], 600, "--task", "noop", "--n", str(n),
                "--warmup", str(self.args.warmup),
            )  # fmt: skip
        queued = self.queue_state(system)[0]
        worker = WorkerProc(system, self.url[system], "prefork", 2, self.logdir, profile_dir)
        try:
            poll = self.args.poll_ms / 1000.0
            timeout = max(self.args.drain_timeout, n / 400.0)
            deadline = time.monotonic() + timeout
            meter: LoadMeter | None = None
            while True:
                time.sleep(poll)
                length, pending, first = self.queue_state(system)
                now = time.time()
                if first and meter is None:
                    meter = LoadMeter(self.r[system], worker.tree())
                if first and length == 0 and pending == 0:
                    break
                if time.monotonic() > deadline or not worker.alive():
                    raise Failed(
                        f"drain not done: {length} queued, {pending} unacked, worker alive "
                        f"{worker.alive()}: {worker.tail()}"
                    )
            assert meter is not None
            worker_cpu = meter.pids_cpu()
            redis_cpu = meter.redis_cpu()
            foreign = meter.cores()
            rss, pss, procs = worker.rss_kb()
            ready_raw = self.r[system].lindex("bench:ready", 0)
        finally:
            worker.stop()
        t_first = self.first_start(system)
        elapsed = now - t_first
        ready = float(json.loads(ready_raw)[0]) if ready_raw else None
        return {
            "enqueue_rate": prod["rate"],
            "enqueue_cpu_us_per_call": prod.get("cpu", 0.0) / n * 1e6 if "cpu" in prod else None,
            "queued": queued,
            "elapsed": elapsed,
            "rate": queued / elapsed,
            "rate_from_ready": queued / (now - ready) if ready else None,
            "rate_from_spawn": queued / (now - worker.started),
            "worker_cpu_us_per_task": (worker_cpu or float("nan")) / queued * 1e6,
            "redis_cpu_us_per_task": redis_cpu / queued * 1e6,
            "foreign_cores": foreign,
            "rss_kb": rss,
            "pss_kb": pss,
            "procs": procs,
        }

    def w_enqueue_drain(self) -> None:
        n, reps = self.args.tasks, self.args.reps
        progress(
            f"workloads 1+2+6: {n:,} x noop.delay() (enqueue rate), then drain with a prefork "
            f"-c 2 worker, RSS after the drain; {reps} reps"
        )
        for rep in range(reps):
            for system in self.order(rep):
                where = f"drain rep {rep + 1}/{reps} {LABEL[system]}"
                try:
                    out = self.drain_once(system, n, bulk=False)
                except Failed as exc:
                    self.fail(where, exc)
                    continue
                finally:
                    self.clean(system)
                self.put("drain", system, rep, out)
                progress(
                    f"  {where}: enqueue {out['enqueue_rate']:,.0f}/s; drain {out['queued']:,} in "
                    f"{out['elapsed']:.2f}s = {out['rate']:,.0f}/s (worker CPU "
                    f"{out['worker_cpu_us_per_task']:.0f} us/task, redis "
                    f"{out['redis_cpu_us_per_task']:.0f} us/task, other procs "
                    f"{out['foreign_cores']:.2f} cores); RSS after {out['rss_kb'] / 1024:.1f} MiB "
                    f"/ {out['procs']} procs"
                )

    # -- 3: delay -> get ----------------------------------------------------------------------

    def w_latency(self) -> None:
        n, reps = self.args.round_trips, self.args.reps
        progress(f"workload 3: {n:,} sequential echo.delay(i).get(), -P solo, {reps} reps")
        for rep in range(reps):
            for system in self.order(rep):
                where = f"latency rep {rep + 1}/{reps} {LABEL[system]}"
                self.clean(system)
                worker = WorkerProc(system, self.url[system], "solo", 1, self.logdir)
                try:
                    worker.wait_ready(self.r[system])
                    meter = LoadMeter(self.r[system], worker.tree())
                    out = run_role(
                        "latency", system, self.url[system], 300, "--n", str(n), "--warmup", "50"
                    )
                    foreign = meter.cores()
                except Failed as exc:
                    self.fail(where, exc)
                    continue
                finally:
                    worker.stop()
                    self.clean(system)
                lat = out["latencies_ms"]
                res = {
                    "p50": percentile(lat, 50),
                    "p99": percentile(lat, 99),
                    "mean": statistics.fmean(lat),
                    "foreign_cores": foreign,
                }
                self.put("latency", system, rep, res)
                progress(
                    f"  {where}: p50 {res['p50']:.2f} ms, p99 {res['p99']:.2f} ms "
                    f"(other procs {foreign:.2f} cores)"
                )

    # -- 4 + 6a: countdown lateness, idle RSS -------------------------------------------------

    def w_lateness(self) -> None:
        n, reps = self.args.countdown, self.args.reps
        progress(
            f"workloads 4+6: idle prefork -c 2 worker (RSS), then {n} x "
            f"stamp.apply_async(countdown=1) in one burst, {reps} reps"
        )
        for rep in range(reps):
            for system in self.order(rep):
                where = f"lateness rep {rep + 1}/{reps} {LABEL[system]}"
                self.clean(system)
                r = self.r[system]
                worker = WorkerProc(system, self.url[system], "prefork", 2, self.logdir)
                try:
                    worker.wait_ready(r)
                    time.sleep(self.args.settle)
                    rss, pss, procs = worker.rss_kb()
                    meter = LoadMeter(r, worker.tree())
                    out = run_role(
                        "produce", system, self.url[system], 120, "--task", "stamp",
                        "--n", str(n), "--warmup", "0", "--countdown-s", "1",
                    )  # fmt: skip
                    deadline = time.monotonic() + 30
                    while r.llen("bench:stamps") < n:
                        if time.monotonic() > deadline or not worker.alive():
                            raise Failed(
                                f"{r.llen('bench:stamps')} of {n} stamps after 30s: {worker.tail()}"
                            )
                        time.sleep(0.02)
                    stamps = [json.loads(x) for x in r.lrange("bench:stamps", 0, -1)]
                    foreign = meter.cores()
                except Failed as exc:
                    self.fail(where, exc)
                    continue
                finally:
                    worker.stop()
                    self.clean(system)
                sent = {int(tag): before for tag, before in out["sends"]}
                late, from_header = [], 0
                for tag, start, eta in stamps:
                    if eta:
                        due = datetime.fromisoformat(eta).timestamp()
                        from_header += 1
                    else:  # no eta in the request: the send time + the countdown
                        due = sent[int(tag)] + 1.0
                    late.append((start - due) * 1e3)
                res = {
                    "p50": percentile(late, 50),
                    "p99": percentile(late, 99),
                    "min": min(late),
                    "max": max(late),
                    "early": sum(1 for v in late if v < 0),
                    "n": len(late),
                    "eta_from_request": from_header,
                    "burst_ms": out["elapsed"] * 1e3,
                    "foreign_cores": foreign,
                }
                self.put("lateness", system, rep, res)
                self.put("rss_idle", system, rep, {"rss_kb": rss, "pss_kb": pss, "procs": procs})
                progress(
                    f"  {where}: idle RSS {rss / 1024:.1f} MiB / {procs} procs (PSS "
                    f"{pss / 1024:.1f} MiB); burst sent in {res['burst_ms']:.0f} ms; lateness "
                    f"p50 {res['p50']:.1f} ms, p99 {res['p99']:.1f} ms, min {res['min']:.1f} ms, "
                    f"{res['early']} early (other procs {foreign:.2f} cores)"
                )

    # -- 5: CPU-bound mix ---------------------------------------------------------------------

    def w_cpu(self) -> None:
        n, reps = self.args.cpu_tasks, self.args.reps
        if self.iterations is None:
            cal = run_role("calibrate", "celery", self.url["celery"], 120, "--arg", "5")
            self.iterations = int(cal["iterations"])
            self.results["cpu_task_iterations"] = self.iterations
            self.results["cpu_task_check_ms"] = cal["check_ms"]
        progress(
            f"workload 5: {n} x burn({self.iterations:,} iterations, ~5 ms), prefilled, "
            f"prefork -c 2, {reps} reps"
        )
        for rep in range(reps):
            for system in self.order(rep):
                where = f"cpu rep {rep + 1}/{reps} {LABEL[system]}"
                self.clean(system)
                r = self.r[system]
                worker = None
                try:
                    run_role(
                        "produce", system, self.url[system], 120, "--task", "burn",
                        "--n", str(n), "--warmup", "0", "--arg", str(self.iterations),
                    )  # fmt: skip
                    worker = WorkerProc(system, self.url[system], "prefork", 2, self.logdir)
                    deadline = time.monotonic() + 120
                    meter = None
                    while r.llen("bench:burns") < n:
                        if meter is None and r.llen("bench:first"):
                            meter = LoadMeter(r, worker.tree())
                        if time.monotonic() > deadline or not worker.alive():
                            raise Failed(f"{r.llen('bench:burns')} of {n} done: {worker.tail()}")
                        time.sleep(0.02)
                    foreign = meter.cores() if meter else float("nan")
                    spans = [json.loads(x) for x in r.lrange("bench:burns", 0, -1)]
                except Failed as exc:
                    self.fail(where, exc)
                    continue
                finally:
                    if worker is not None:
                        worker.stop()
                    self.clean(system)
                first = min(s for s, _ in spans)
                last = max(e for _, e in spans)
                busy = statistics.median(e - s for s, e in spans) * 1e3
                res = {
                    "rate": n / (last - first),
                    "task_ms_median": busy,
                    "foreign_cores": foreign,
                    "ideal_rate": 2 / (busy / 1e3),
                }
                self.put("cpu", system, rep, res)
                progress(
                    f"  {where}: {res['rate']:,.0f} tasks/s (task body median {busy:.2f} ms; "
                    f"2 cores at 100% would be {res['ideal_rate']:,.0f}/s; other procs "
                    f"{foreign:.2f} cores)"
                )

    # -- 7: celery_docket drain vs queue size -------------------------------------------------

    def w_sizes(self) -> None:
        sizes = list(self.args.sizes)
        reps = self.args.reps
        progress(f"workload 7: celery_docket drain at {', '.join(f'{s:,}' for s in sizes)} queued")
        for size in sizes:
            for rep in range(reps):
                where = f"size {size:,} rep {rep + 1}/{reps}"
                try:
                    out = self.drain_once("docket", size, bulk=True)
                except Failed as exc:
                    self.fail(where, exc)
                    continue
                finally:
                    self.clean("docket")
                self.put(f"size_{size}", "docket", rep, out)
                progress(
                    f"  {where}: bulk prefill {out['enqueue_rate']:,.0f}/s; drain "
                    f"{out['queued']:,} in {out['elapsed']:.2f}s = {out['rate']:,.0f}/s (other "
                    f"procs {out['foreign_cores']:.2f} cores)"
                )

    # -- profile ------------------------------------------------------------------------------

    def profile(self) -> None:
        """cProfile in the celery_docket worker processes: one drain, one round-trip run."""
        n = self.args.tasks
        progress(f"profile: celery_docket drain of {n:,} with both prefork children under cProfile")
        pdir = tempfile.mkdtemp(prefix="compare-bench-prof-")
        try:
            out = self.drain_once("docket", n, bulk=True, profile_dir=pdir)
            self.results["profile_drain"] = profile_report(
                glob_prof(pdir), out["queued"], "task", f"drain {out['rate']:,.0f}/s profiled"
            )
            progress(f"  profiled drain {out['rate']:,.0f}/s")
        except Failed as exc:
            self.fail("profile drain", exc)
        finally:
            self.clean("docket")
            shutil.rmtree(pdir, ignore_errors=True)
        rt = min(500, self.args.round_trips)
        progress(f"profile: {rt} delay->get round trips, solo worker and client under cProfile")
        wdir = tempfile.mkdtemp(prefix="compare-bench-prof-")
        cdir = tempfile.mkdtemp(prefix="compare-bench-prof-")
        worker = WorkerProc("docket", self.url["docket"], "solo", 1, self.logdir, wdir)
        try:
            worker.wait_ready(self.r["docket"])
            lat = run_role(
                "latency", "docket", self.url["docket"], 300, "--n", str(rt), "--warmup", "50",
                "--profile-dir", cdir,
            )["latencies_ms"]  # fmt: skip
            worker.stop()
            label = f"p50 {percentile(lat, 50):.2f} ms profiled"
            tasks = rt + 51  # the warm-up round trips run in the profiled worker too
            self.results["profile_latency_worker"] = profile_report(
                glob_prof(wdir), tasks, "round trip", label
            )
            self.results["profile_latency_client"] = profile_report(
                glob_prof(cdir), rt, "round trip", label
            )
            progress(f"  profiled round trips: {label}")
        except Failed as exc:
            self.fail("profile latency", exc)
        finally:
            worker.stop()
            self.clean("docket")
            shutil.rmtree(wdir, ignore_errors=True)
            shutil.rmtree(cdir, ignore_errors=True)

    # -- summaries ----------------------------------------------------------------------------

    def summarise(self) -> None:
        R = self.results

        def runs(key: str, system: str, field: str, scale: float = 1.0) -> list[float | None]:
            out: list[float | None] = []
            for v in self.raw.get(key, {}).get(system, []):
                x = v.get(field) if v else None
                out.append(None if x is None else x * scale)
            return out

        def pair(name: str, key: str, field: str, scale: float = 1.0) -> None:
            c = runs(key, "celery", field, scale)
            d = runs(key, "docket", field, scale)
            R[f"{name}_celery"] = summary(c)
            R[f"{name}_docket"] = summary(d)
            ratios = [(b / a) if (a and b is not None) else None for a, b in zip(c or [], d or [])]
            R[f"{name}_ratio"] = summary(ratios)

        pair("enqueue", "drain", "enqueue_rate")
        pair("enqueue_cpu", "drain", "enqueue_cpu_us_per_call")
        pair("drain", "drain", "rate")
        pair("drain_from_ready", "drain", "rate_from_ready")
        pair("drain_from_spawn", "drain", "rate_from_spawn")
        pair("drain_worker_cpu", "drain", "worker_cpu_us_per_task")
        pair("drain_redis_cpu", "drain", "redis_cpu_us_per_task")
        pair("drain_foreign", "drain", "foreign_cores")
        pair("latency_p50", "latency", "p50")
        pair("latency_p99", "latency", "p99")
        pair("latency_foreign", "latency", "foreign_cores")
        pair("lateness_p50", "lateness", "p50")
        pair("lateness_p99", "lateness", "p99")
        pair("lateness_min", "lateness", "min")
        pair("lateness_max", "lateness", "max")
        pair("lateness_foreign", "lateness", "foreign_cores")
        pair("cpu", "cpu", "rate")
        pair("cpu_foreign", "cpu", "foreign_cores")
        pair("rss_idle", "rss_idle", "rss_kb", 1 / 1024)
        pair("pss_idle", "rss_idle", "pss_kb", 1 / 1024)
        pair("rss_after", "drain", "rss_kb", 1 / 1024)
        pair("pss_after", "drain", "pss_kb", 1 / 1024)
        for key, src in (("rss_idle", "rss_idle"), ("rss_after", "drain")):
            for system in SYSTEMS:
                per = []
                for v in self.raw.get(src, {}).get(system, []):
                    per.append(v["rss_kb"] / 1024 / v["procs"] if v and v.get("procs") else None)
                R[f"{key}_per_proc_{system}"] = summary(per)
            c = R[f"{key}_per_proc_celery"]["runs"]
            d = R[f"{key}_per_proc_docket"]["runs"]
            R[f"{key}_per_proc_ratio"] = summary(
                [(b / a) if (a and b is not None) else None for a, b in zip(c, d)]
            )
        for system in SYSTEMS:
            early = [v for v in self.raw.get("lateness", {}).get(system, []) if v]
            R[f"lateness_early_{system}"] = {
                "early": sum(v["early"] for v in early),
                "of": sum(v["n"] for v in early),
                "eta_from_request": sum(v["eta_from_request"] for v in early),
            }
        for size in self.args.sizes:
            R[f"size_{size}_docket"] = summary(runs(f"size_{size}", "docket", "rate"))
            R[f"size_{size}_prefill_docket"] = summary(
                runs(f"size_{size}", "docket", "enqueue_rate")
            )

    def verdicts(self) -> dict[str, dict[str, Any]]:
        R = self.results
        out = {}
        sources = {
            "drain": R.get("drain_ratio"),
            "latency_p50": R.get("latency_p50_ratio"),
            "lateness_p99": R.get("lateness_p99_docket"),
            "rss_idle_per_proc": R.get("rss_idle_per_proc_ratio"),
        }
        for key, (text, limit, kind) in TARGETS.items():
            s = sources[key] or {}
            value = s.get("median")
            if value is None:
                ok = None
            elif kind == "ratio_ge":
                ok = value >= limit
            else:
                ok = value <= limit
            out[key] = {
                "target": text,
                "value": value,
                "limit": limit,
                "verdict": "n/a" if ok is None else ("PASS" if ok else "MISS"),
            }
        return out


# -- profiles ----------------------------------------------------------------------------------

HOT: dict[str, tuple[str, str]] = {  # label: (file suffix or "~" for builtins, function)
    "socket sendall (commands sent)": ("~", "<method 'sendall' of '_socket.socket' objects>"),
    "socket recv_into (waiting for replies)": (
        "~",
        "<method 'recv_into' of '_socket.socket' objects>",
    ),
    "socket connect (new connections)": ("~", "<method 'connect' of '_socket.socket' objects>"),
    "time.sleep": ("~", "<built-in method time.sleep>"),
    "json.loads": ("json/__init__.py", "loads"),
    "inspect.Signature.bind": ("inspect.py", "_bind"),
}


def glob_prof(directory: str) -> list[str]:
    return sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".prof"))


def profile_report(files: list[str], units: int, unit: str, label: str) -> dict[str, Any]:
    """Top 25 by tottime and cumulative, and a few hot spots per ``unit``."""
    import pstats

    if not files:
        raise Failed("no profile was written")
    buf = io.StringIO()
    stats = pstats.Stats(*files, stream=buf)
    stats.sort_stats("tottime").print_stats(25)
    text = buf.getvalue()
    total = next((ln.strip() for ln in text.splitlines() if "function calls" in ln), "")
    top = text[text.find("   ncalls") :] if "   ncalls" in text else text
    buf2 = io.StringIO()
    pstats.Stats(*files, stream=buf2).sort_stats("cumulative").print_stats(25)
    cum = buf2.getvalue()
    cum = cum[cum.find("   ncalls") :] if "   ncalls" in cum else cum
    hot = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for name, (suffix, function) in HOT.items():
        calls, tt = 0, 0.0
        for (filename, _line, func), (_cc, nc, t, _ct, _callers) in raw.items():
            if func == function and filename.endswith(suffix):
                calls += nc
                tt += t
        if calls:
            hot[name] = {"calls_per_unit": calls / units, "us_per_unit": tt / units * 1e6}
    return {
        "label": label,
        "unit": unit,
        "units": units,
        "files": len(files),
        "total": total,
        "hot": hot,
        "top25_tottime": top,
        "top25_cumulative": cum,
    }


def render_profile(name: str, prof: dict[str, Any]) -> str:
    out = [f"cProfile, {name} ({prof['label']}; {prof['total']}), per {prof['unit']}:"]
    for key, v in prof["hot"].items():
        out.append(f"  {key:<40} {v['calls_per_unit']:6.2f} calls  {v['us_per_unit']:8.1f} us")
    out.append("top 25 by tottime:")
    out.append(prof["top25_tottime"].rstrip())
    return "\n".join(out)


# -- report ------------------------------------------------------------------------------------


def machine_info(r: Any, url: str, own: bool) -> dict[str, Any]:
    from importlib import metadata

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    server = r.info("server")
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        model = next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), "")
    mem_kb = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        mem_kb = int(next(ln.split()[1] for ln in fh if ln.startswith("MemTotal:")))
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_total_mib": mem_kb / 1024 if mem_kb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "celery": version("celery"),
        "kombu": version("kombu"),
        "celery_docket": version("celery-docket"),
        "redis_py": redis.__version__,
        "hiredis": version("hiredis"),
        "hiredis_parser_in_use": bool(getattr(redis.utils, "HIREDIS_AVAILABLE", False)),
        "redis_server": server.get("redis_version"),
        "redis_url": url.split("@")[-1],
        "redis_started_by_bench": own,
        "celery_docket_cli": script("celery-docket") is not None,
        "pydocket": importlib.util.find_spec("docket") is not None,
        "git_head": git(["rev-parse", "HEAD"]),
        "celery_docket_dirty": git(["diff", "--quiet", "HEAD", "--", "celery_docket"]) is None,
        "celery_docket_source_sha256_start": source_hash(),
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def git(cmd: list[str]) -> str | None:
    """Read-only git query in the repo; None on failure (or a non-zero exit)."""
    try:
        out = subprocess.run(
            ["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def source_hash(root: Path = ROOT) -> str:
    """sha256 over celery_docket/**/*.py (path + content) under ``root``."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((root / "celery_docket").rglob("*.py")):
        with contextlib.suppress(OSError):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def imported_from(url: str) -> str:
    """Where a child process imports celery_docket from (checks the snapshot is used).

    Run from a neutral directory: like a console script (whose ``sys.path[0]`` is its own
    directory), unlike ``python -c`` in the repo, whose ``''`` entry would find the work tree.
    """
    out = subprocess.run(
        [sys.executable, "-c", "import celery_docket; print(celery_docket.__file__)"],
        env=child_env(url),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() or out.stderr.strip()[-200:]


def fmt_ratio(s: dict[str, Any] | None) -> str:
    if not s or s.get("median") is None:
        return "n/a"
    m = s["median"]
    spec = ".1f" if m >= 10 else ".2f"
    return f"{m:{spec}}x [{s['min']:{spec}}-{s['max']:{spec}}]"


def render(bench: Bench, machine: dict[str, Any], args: argparse.Namespace) -> str:
    R = bench.results.get
    V = bench.verdicts()
    rows: list[tuple[str, ...]] = []

    def row(label: str, key: str, spec: str = ",.0f", target: str = "", ratio: bool = True) -> None:
        rows.append(
            (
                label,
                fmt(R(f"{key}_celery"), spec),
                fmt(R(f"{key}_docket"), spec),
                fmt_ratio(R(f"{key}_ratio")) if ratio else "",
                target,
            )
        )

    def verdict(key: str) -> str:
        v = V[key]
        return f"{v['verdict']} ({v['target']})"

    n = args.tasks
    row("1 enqueue, delay() in a loop, tasks/s (higher=better)", "enqueue")
    row(
        f"2 drain {n // 1000}k no-ops, prefork -c 2, tasks/s (higher=better)",
        "drain",
        target=verdict("drain"),
    )
    row("    same, clock from the worker_ready signal", "drain_from_ready")
    row("    same, clock from the worker's spawn", "drain_from_spawn")
    row("    worker tree CPU per task, us", "drain_worker_cpu")
    row("    redis-server CPU per task, us", "drain_redis_cpu", ".1f")
    row(
        "3 delay->get p50, ms, -P solo (lower=better)", "latency_p50", ".2f", verdict("latency_p50")
    )
    row("    p99, ms", "latency_p99", ".2f")
    row(f"4 countdown=1 x{args.countdown} burst: lateness p50, ms", "lateness_p50", ".1f")
    row("    lateness p99, ms (lower=better)", "lateness_p99", ".1f", verdict("lateness_p99"))
    row("    lateness min, ms (negative = early)", "lateness_min", ".1f", ratio=False)
    row("    lateness max, ms", "lateness_max", ".1f", ratio=False)
    ec, ed = R("lateness_early_celery") or {}, R("lateness_early_docket") or {}
    rows.append(
        (
            "    early starts (before the ETA)",
            f"{ec.get('early', 'n/a')} of {ec.get('of', 'n/a')}",
            f"{ed.get('early', 'n/a')} of {ed.get('of', 'n/a')}",
            "",
            "",
        )
    )
    row(f"5 CPU mix {args.cpu_tasks} x ~5 ms, prefork -c 2, tasks/s", "cpu", ",.0f")
    row("6 idle worker RSS, tree sum, MiB", "rss_idle", ".1f")
    row(
        "    per process, MiB (lower=better)",
        "rss_idle_per_proc",
        ".1f",
        verdict("rss_idle_per_proc"),
    )
    row("    PSS tree sum (shared pages split), MiB", "pss_idle", ".1f")
    row("  RSS after the drain, tree sum, MiB", "rss_after", ".1f")
    row("    per process, MiB", "rss_after_per_proc", ".1f")
    row("    PSS tree sum, MiB", "pss_after", ".1f")
    for size in args.sizes:
        rows.append(
            (
                f"7 drain at {size:,} queued, tasks/s",
                "-",
                fmt(R(f"size_{size}_docket")),
                "",
                "",
            )
        )
    flat = [f for f in (R(f"size_{s}_docket") for s in args.sizes) if f and f.get("median")]
    if len(flat) >= 2 and len(flat) == len(args.sizes):
        rows.append(
            (
                "    largest/smallest queue rate",
                "",
                f"{flat[-1]['median'] / flat[0]['median']:.2f}x",
                "",
                "",
            )
        )
    row("  other processes' CPU, cores: during 2", "drain_foreign", ".2f", ratio=False)
    row("                                  during 3", "latency_foreign", ".2f", ratio=False)
    row("                                  during 4", "lateness_foreign", ".2f", ratio=False)
    row("                                  during 5", "cpu_foreign", ".2f", ratio=False)

    header = ("metric", LABEL["celery"], LABEL["docket"], "docket/Celery", "target")
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(5)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [
        f"Celery {machine['celery']} (kombu {machine['kombu']}) vs celery_docket "
        f"{machine['celery_docket']}: {args.reps} reps, median [min-max], systems alternating",
        f"redis-server {machine['redis_server']} at {machine['redis_url']}"
        f" ({'started by the bench' if machine['redis_started_by_bench'] else 'given'};"
        f" Celery db {args.celery_db}, celery_docket db {args.docket_db}),"
        f" Python {machine['python']}, redis-py {machine['redis_py']} + hiredis"
        f" {machine['hiredis']}, {machine['cpu_count']} CPUs {machine['cpu_model']},"
        f" repo at {(machine.get('git_head') or '?')[:10]}"
        f"{' (celery_docket/ modified)' if machine.get('celery_docket_dirty') else ''}",
        "",
        line(header),
        line(tuple("-" * w for w in widths)),
        *(line(r) for r in rows),
    ]
    if bench.notes:
        out += ["", *(f"note: {n}" for n in bench.notes)]
    return "\n".join(out)


# -- the chart ---------------------------------------------------------------------------------


def chart_groups(bench: Bench, args: argparse.Namespace) -> list[dict[str, Any]]:
    R = bench.results.get
    groups = []

    def add(title: str, key: str, unit: str, better: str, spec: str) -> None:
        c, d = R(f"{key}_celery"), R(f"{key}_docket")
        if not (c and d and c.get("median") is not None and d.get("median") is not None):
            return
        bars = [
            {
                "system": "celery",
                "label": LABEL["celery"],
                "value": c["median"],
                "lo": c["min"],
                "hi": c["max"],
            },
            {
                "system": "docket",
                "label": LABEL["docket"],
                "value": d["median"],
                "lo": d["min"],
                "hi": d["max"],
            },
        ]
        ratio = R(f"{key}_ratio") or {}
        groups.append(
            {"title": title, "unit": unit, "better": better, "spec": spec, "bars": bars,
             "ratio": ratio.get("median")}
        )  # fmt: skip

    add("enqueue", "enqueue", "tasks/s", "higher", ",.0f")
    add(f"drain {args.tasks // 1000}k", "drain", "tasks/s", "higher", ",.0f")
    add("delay->get p50", "latency_p50", "ms", "lower", ".2f")
    add("delay->get p99", "latency_p99", "ms", "lower", ".2f")
    add("countdown p50", "lateness_p50", "ms late", "lower", ".1f")
    add("countdown p99", "lateness_p99", "ms late", "lower", ".1f")
    add("CPU mix", "cpu", "tasks/s", "higher", ",.0f")
    add("idle RSS/proc", "rss_idle_per_proc", "MiB", "lower", ".1f")
    add("RSS/proc after drain", "rss_after_per_proc", "MiB", "lower", ".1f")
    sizes: list[tuple[int, dict[str, Any]]] = []
    for size in args.sizes:
        v = R(f"size_{size}_docket")
        if v and v.get("median") is not None:
            sizes.append((size, v))
    if sizes:
        groups.append(
            {
                "title": "drain by queue size",
                "unit": "tasks/s",
                "better": "flat",
                "spec": ",.0f",
                "ratio": None,
                "bars": [
                    {"system": "docket", "label": f"{s // 1000:,}k", "value": v["median"], "lo": v["min"], "hi": v["max"]}
                    for s, v in sizes
                ],
            }
        )  # fmt: skip
    return groups


def render_svg(groups: list[dict[str, Any]], title: str, subtitle: str) -> str:
    """One group of bars per workload, each group on its own linear scale (values labelled)."""
    esc = html.escape
    bar_w, gap, group_gap, plot_h, top, left = 46, 6, 34, 260, 124, 20
    widths = [max(100, len(g["bars"]) * (bar_w + gap) - gap) for g in groups]
    width = left * 2 + 20 + sum(widths) + group_gap * max(0, len(groups) - 1)
    width = max(width, 900)
    height = top + plot_h + 110
    base = top + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica,Arial,sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="26" font-size="17" font-weight="bold">{esc(title)}</text>',
    ]
    for i, text in enumerate(subtitle.split("\n")):
        parts.append(
            f'<text x="{left}" y="{48 + 16 * i}" font-size="12" fill="#333">{esc(text)}</text>'
        )
    lx = width - left - 300
    for j, system in enumerate(SYSTEMS):
        x = lx + j * 150
        parts.append(
            f'<rect x="{x}" y="{top - 26}" width="12" height="12" fill="{COLOURS[system]}"/>'
        )
        parts.append(
            f'<text x="{x + 17}" y="{top - 16}" font-size="12">{esc(LABEL[system])}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="#444" stroke-width="1"/>'
    )
    x = left
    for g, gw in zip(groups, widths):
        peak = max(
            max(b["hi"] if b["hi"] is not None else b["value"], b["value"]) for b in g["bars"]
        )
        peak = peak if peak > 0 else 1.0
        x0 = x + (gw - (len(g["bars"]) * (bar_w + gap) - gap)) / 2
        for k, b in enumerate(g["bars"]):
            bx = x0 + k * (bar_w + gap)
            h = max(2.0, b["value"] / peak * (plot_h - 24)) if b["value"] > 0 else 2.0
            parts.append(
                f'<rect x="{bx}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" '
                f'fill="{COLOURS[b["system"]]}"><title>{esc(b["label"])}: {b["value"]:{g["spec"]}} '
                f"{esc(g['unit'])} [{b['lo']:{g['spec']}}-{b['hi']:{g['spec']}}]</title></rect>"
            )
            if b["lo"] is not None and b["hi"] is not None and b["hi"] > b["lo"]:
                y1 = base - b["lo"] / peak * (plot_h - 24)
                y2 = base - b["hi"] / peak * (plot_h - 24)
                cx = bx + bar_w / 2
                parts.append(
                    f'<line x1="{cx}" y1="{y1:.1f}" x2="{cx}" y2="{y2:.1f}" stroke="#000" stroke-width="1"/>'
                )
            value = f"{b['value']:{g['spec']}}"
            top_y = base - h
            if b["hi"] is not None:
                top_y = min(top_y, base - b["hi"] / peak * (plot_h - 24))
            parts.append(
                f'<text x="{bx + bar_w / 2}" y="{top_y - 5:.1f}" font-size="10" '
                f'text-anchor="middle">{esc(value)}</text>'
            )
            if g["better"] == "flat":
                parts.append(
                    f'<text x="{bx + bar_w / 2}" y="{base + 13}" font-size="10" '
                    f'text-anchor="middle">{esc(b["label"])}</text>'
                )
        cx = x + gw / 2
        label_y = base + (28 if g["better"] == "flat" else 16)
        for i, text in enumerate(_wrap(g["title"], 14)):
            parts.append(
                f'<text x="{cx}" y="{label_y + 13 * i}" font-size="11" font-weight="bold" '
                f'text-anchor="middle">{esc(text)}</text>'
            )
        extra = f"{g['unit']}, {g['better']}" + (
            " = better" if g["better"] != "flat" else " = good"
        )
        if g["ratio"] is not None:
            r = g["ratio"]
            extra = f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"
            extra += f" ({g['unit']}, {g['better']}=better)"
        for i, text in enumerate(_wrap(extra, 18)):
            parts.append(
                f'<text x="{cx}" y="{label_y + 30 + 12 * i}" font-size="9.5" fill="#444" '
                f'text-anchor="middle">{esc(text)}</text>'
            )
        x += gw + group_gap
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    if cur:
        lines.append(cur)
    return lines


def chart_title(bench: Bench) -> tuple[str, str]:
    R = bench.results.get
    parts = []
    for key, name in (
        ("drain", "drain"),
        ("enqueue", "enqueue"),
        ("latency_p50", "delay->get p50"),
        ("lateness_p99", "countdown p99"),
        ("cpu", "CPU mix"),
        ("rss_idle_per_proc", "idle RSS/proc"),
    ):
        s = R(f"{key}_ratio")
        if s and s.get("median") is not None:
            m = s["median"]
            parts.append(f"{name} {m:.1f}x" if m >= 10 else f"{name} {m:.2f}x")
    verdicts = bench.verdicts()
    targets = ", ".join(f"{k} {v['verdict']}" for k, v in verdicts.items())
    title = "celery_docket / Celery 5.x: " + ", ".join(parts[:3])
    sub = "Ratios celery_docket/Celery (medians of per-rep ratios): " + ", ".join(parts)
    sub += f"\nTargets: {targets}. Each group has its own linear scale; whiskers = min-max."
    foreign = [
        v["max"]
        for k, v in bench.results.items()
        if "_foreign_" in k and isinstance(v, dict) and v.get("max") is not None
    ]
    if foreign:
        sub += (
            f"\n2 shared cores; other processes used up to {max(foreign):.2f} cores during a "
            "workload: absolute numbers drift, the ratios are what matter."
        )
    return title, sub


# -- main --------------------------------------------------------------------------------------


def check_twins() -> None:
    """The two app modules must differ only in their SYSTEM import line."""
    a = APP_FILE["celery"].read_text().splitlines()
    b = APP_FILE["docket"].read_text().splitlines()
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    if len(a) != len(b) or len(diff) != 1 or not all("# SYSTEM" in s for s in diff[0]):
        raise SystemExit(
            "bench_celery_app.py and bench_docket_app.py must differ only in the line marked "
            f"'# SYSTEM' (found {len(diff)} differing lines)"
        )


def parse(argv: Iterable[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--redis-url", help="use this Redis instead of starting a redis-server")
    p.add_argument("--quick", action="store_true", help="5k drain, 300 round trips, sizes 10k")
    p.add_argument("--big", action="store_true", help="add a 1M-task celery_docket drain")
    p.add_argument("--json", metavar="PATH", help="results + machine info (default with no "
                   "--quick: benchmarks/results/compare.json)")  # fmt: skip
    p.add_argument("--chart", metavar="PATH", help="SVG bar chart (default with no --quick: "
                   "benchmarks/results/compare.svg)")  # fmt: skip
    p.add_argument("--reps", type=int, default=3, help="repetitions (3)")
    p.add_argument("--tasks", type=int, help="tasks per drain (20000; --quick 5000)")
    p.add_argument("--round-trips", type=int, help="delay->get round trips (1000; --quick 300)")
    p.add_argument("--countdown", type=int, default=200, help="countdown tasks per burst (200)")
    p.add_argument("--cpu-tasks", type=int, default=200, help="~5 ms tasks in the CPU mix (200)")
    p.add_argument("--warmup", type=int, default=200, help="untimed delay() calls before 1")
    p.add_argument("--poll-ms", type=float, default=10.0, help="drain poll period (10 ms)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds idle before idle RSS")
    p.add_argument("--drain-timeout", type=float, default=180.0, help="seconds per drain")
    p.add_argument("--celery-db", type=int, default=1)
    p.add_argument("--docket-db", type=int, default=2)
    p.add_argument("--only", default="1,3,4,5,7", help="workloads: 1 (=1+2+6b), 3, 4 (=4+6a), 5, 7")
    p.add_argument("--profile", action="store_true", help="add cProfiled celery_docket runs")
    p.add_argument(
        "--no-snapshot",
        action="store_true",
        help="import celery_docket from the work tree, not from a copy taken at the start",
    )
    # child-process plumbing
    p.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    p.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    p.add_argument("--task", default="noop", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--arg", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--pool", default="prefork", help=argparse.SUPPRESS)
    p.add_argument("--concurrency", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--profile-dir", help=argparse.SUPPRESS)
    p.add_argument("--countdown-s", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(list(argv) if argv is not None else None)
    if args.role:
        return args
    defaults = not args.quick
    if args.tasks is None:
        args.tasks = 5_000 if args.quick else 20_000
    if args.round_trips is None:
        args.round_trips = 300 if args.quick else 1_000
    args.sizes = [10_000] if args.quick else [10_000, 100_000]
    if args.big:
        args.sizes.append(1_000_000)
    if defaults and args.json is None:
        args.json = str(RESULTS_DIR / "compare.json")
    if defaults and args.chart is None:
        args.chart = str(RESULTS_DIR / "compare.svg")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse(argv)
    if args.role:
        ROLES[args.role](args)
        return 0
    check_twins()
    global SNAPSHOT
    if not args.no_snapshot:
        SNAPSHOT = take_snapshot()
    server: OwnRedis | None = None
    url = args.redis_url
    if url is None:
        server = OwnRedis().start()
        url = server.url
        progress(f"started redis-server pid {server.proc.pid if server.proc else '?'} on {url}")
    only = {p.strip() for p in args.only.split(",")}
    bench = Bench(url, args)
    try:
        for system in SYSTEMS:
            size = bench.r[system].dbsize()
            if size and args.redis_url:
                raise SystemExit(
                    f"db {bench.url[system]} holds {size} keys: pick empty ones with "
                    "--celery-db/--docket-db (the bench deletes every key in them)"
                )
            bench.clean(system)
        machine = machine_info(bench.r["celery"], url, server is not None)
        machine["celery_docket_snapshot"] = bool(SNAPSHOT)
        if SNAPSHOT:
            machine["celery_docket_source_sha256_start"] = source_hash(Path(SNAPSHOT))
        where = imported_from(bench.url["docket"])
        machine["celery_docket_imported_from"] = where
        if SNAPSHOT and not where.startswith(SNAPSHOT):
            raise SystemExit(f"children do not import the snapshot of celery_docket: {where}")
        if not machine["pydocket"]:
            bench.notes.append("pydocket is not installed: its comparison was skipped")
        else:
            bench.notes.append("pydocket is installed but not wired into this bench: skipped")
        if not machine["celery_docket_cli"]:
            bench.notes.append("celery-docket script not found: WorkController(app) was used")
        progress(
            f"Celery db {args.celery_db}, celery_docket db {args.docket_db}; logs in {bench.logdir}"
        )
        if "1" in only:
            bench.w_enqueue_drain()
        if "3" in only:
            bench.w_latency()
        if "4" in only:
            bench.w_lateness()
        if "5" in only:
            bench.w_cpu()
        if "7" in only:
            bench.w_sizes()
        if args.profile:
            bench.profile()
    finally:
        for system in SYSTEMS:
            with contextlib.suppress(Exception):
                bench.clean(system)
        if server is not None:
            server.stop()
        if SNAPSHOT:
            shutil.rmtree(SNAPSHOT, ignore_errors=True)
    progress("done")
    machine["git_head_end"] = git(["rev-parse", "HEAD"])
    machine["celery_docket_source_sha256_end"] = source_hash()
    changed = (
        machine["celery_docket_source_sha256_end"] != machine["celery_docket_source_sha256_start"]
    )
    if changed and SNAPSHOT:
        bench.notes.append(
            "celery_docket/ changed in the work tree during the run; every process ran the "
            f"snapshot taken at the start (source hash {machine['celery_docket_source_sha256_start']})"
        )
    elif changed:
        bench.notes.append(
            "celery_docket/ changed while this run was going (source hash "
            f"{machine['celery_docket_source_sha256_start']} -> "
            f"{machine['celery_docket_source_sha256_end']}): workers started at different times "
            "ran different code; re-run on a quiet tree"
        )
    bench.summarise()
    table = render(bench, machine, args)
    print(table)
    for key, name in (
        ("profile_drain", "celery_docket prefork children during a drain"),
        ("profile_latency_worker", "celery_docket solo worker during delay->get"),
        ("profile_latency_client", "celery_docket client during delay->get"),
    ):
        prof = bench.results.get(key)
        if prof:
            print("\n" + render_profile(name, prof))
    if bench.failures:
        print("\nFAILURES:\n  " + "\n  ".join(bench.failures))
    if hasattr(os, "getloadavg"):
        machine["loadavg_end"] = os.getloadavg()
    if args.chart:
        title, sub = chart_title(bench)
        Path(args.chart).parent.mkdir(parents=True, exist_ok=True)
        Path(args.chart).write_text(render_svg(chart_groups(bench, args), title, sub))
        progress(f"wrote {args.chart}")
    if args.json:
        doc = {
            "command": " ".join(
                ["python", "benchmarks/compare.py", *(sys.argv[1:] if argv is None else list(argv))]
            ),
            "machine": machine,
            "settings": {
                k: v
                for k, v in vars(args).items()
                if k
                not in ("role", "system", "task", "n", "arg", "pool", "concurrency", "profile_dir")
            }
            | {
                "celery_worker": " ".join(worker_command("celery", "prefork", 2, None)[1:]),
                "docket_worker": " ".join(worker_command("docket", "prefork", 2, None)[1:]),
                "cpu_task_iterations": bench.iterations,
            },
            "elapsed_seconds": time.monotonic() - T0,
            "targets": bench.verdicts(),
            "results": bench.results,
            "raw": bench.raw,
            "notes": bench.notes,
            "failures": bench.failures,
            "table": table,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
        progress(f"wrote {args.json}")
    if bench.failures:
        progress(f"worker logs kept in {bench.logdir}")
    else:
        shutil.rmtree(bench.logdir, ignore_errors=True)
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
