#!/usr/bin/env python
"""Benchmark the Redis-streams engine against bare redis-py on one Redis, in one run.

    python benchmarks/engine_bench.py [--redis-url URL] [--tasks N] [--json out.json]

Without ``--redis-url`` a throwaway ``redis-server`` is started on a free loopback port
(``--save '' --appendonly no``) and stopped by its pid at the end. With ``--redis-url`` every
key is made under a fresh ``bench-<hex>`` prefix and deleted afterwards (nothing is flushed).

Phases (each repeated ``--reps`` times, reported as median [min-max]):

1. single enqueue: ``Docket.enqueue(Call(...))`` in a loop vs a bare ``XADD`` loop with the
   same fields (including a fresh uuid4 hex id, as the engine makes one);
2. batch enqueue: ``enqueue_many`` of ``--batch`` calls vs pipelined ``XADD`` in chunks of
   1,000 (what ``enqueue_many`` does for plain calls);
3. drain: ``--tasks`` no-op tasks pre-filled, then two worker processes (``Worker``, pool solo,
   prefetch 256, ``lambda d: Outcome.done()``) vs two bare processes (``XREADGROUP COUNT 100
   BLOCK 1000`` then ``XACK`` + ``XDEL`` of the batch in one pipeline); the clock runs from the
   moment both (already imported and connected) processes are told to go until the parent
   sees ``XLEN == 0`` and ``XPENDING == 0``;
4. delay->result latency: native API (``d.add(noop)()`` + ``d.result(id, timeout=5)``),
   sequential round trips against one worker process, for pool solo and pool threads;
5. countdown lateness: tasks added with ``when=timedelta(seconds=1)`` (200 in one
   ``enqueue_many`` burst, then 200 single adds 10 ms apart); lateness = wall-clock start in
   the handler - the due time the engine returned (``Execution.when_ms``);
6. CPU per task during the drain: user+sys of the worker processes (``/proc/<pid>/stat``,
   all threads) and of redis-server (``INFO cpu``), divided by the tasks drained.

``--profile`` adds one more engine drain with worker 0 under cProfile (main thread = the
solo reader that runs, decodes and commits everything) and prints the top 25 by tottime.

Child processes are this same file run with ``--role``; they print ``ready`` once imported
and connected, wait for ``go`` on stdin, and print one JSON line when they stop (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import redis

FN = "noop"
BODY = b"json:[[],{}]"
QUEUE = "default"
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


def noop() -> None:
    """The native task of phase 4 (registered as ``__main__.noop`` in parent and child)."""
    return None


# -- small helpers ---------------------------------------------------------------------------


def summary(runs: Sequence[float]) -> dict[str, Any]:
    clean = [r for r in runs if r == r]  # drop NaN (a failed repetition)
    if not clean:
        return {"runs": list(runs), "median": None, "min": None, "max": None}
    return {
        "runs": list(runs),
        "median": statistics.median(clean),
        "min": min(clean),
        "max": max(clean),
    }


def proc_cpu_seconds(pid: int) -> float | None:
    """user+sys CPU seconds of a live process (all its threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def command_stats(r: Any) -> dict[str, tuple[int, int]]:
    """INFO commandstats as {command: (calls, usec)} (commands run by scripts included)."""
    out = {}
    for key, value in r.info("commandstats").items():
        if key.startswith("cmdstat_") and isinstance(value, dict):
            out[key[len("cmdstat_") :]] = (int(value["calls"]), int(value["usec"]))
    return out


def stats_delta(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    out = {}
    for name, (calls, usec) in after.items():
        c0, u0 = before.get(name, (0, 0))
        if calls - c0:
            out[name] = (calls - c0, usec - u0)
    return out


class LoadMeter:
    """Cores kept busy by processes that are not ours (ours: this process, ``pids``, Redis).

    Measured from /proc/stat over the meter's life; NaN where /proc is missing or a pid is gone.
    """

    def __init__(self, r: Any, pids: Sequence[int] = ()) -> None:
        self.r = r
        self.pids = list(pids)
        self.t0 = time.perf_counter()
        self.sys0 = system_busy_seconds()
        self.own0 = own_cpu_seconds()
        self.redis0 = redis_cpu_seconds(r)
        self.kids0 = [proc_cpu_seconds(p) for p in self.pids]

    def cores(self) -> float:
        elapsed = time.perf_counter() - self.t0
        sys1, own1, redis1 = system_busy_seconds(), own_cpu_seconds(), redis_cpu_seconds(self.r)
        kids1 = [proc_cpu_seconds(p) for p in self.pids]
        if self.sys0 is None or sys1 is None or elapsed <= 0:
            return float("nan")
        kids = 0.0
        for a, b in zip(self.kids0, kids1):
            if a is None or b is None:
                return float("nan")
            kids += b - a
        ours = (own1 - self.own0) + (redis1 - self.redis0) + kids
        return max(0.0, (sys1 - self.sys0) - ours) / elapsed


def delete_prefix(r: Any, prefix: str) -> int:
    """Delete every key containing ``prefix`` (all keys of this run do; nothing else does)."""
    n = 0
    batch: list[bytes] = []
    for key in r.scan_iter(match=f"*{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            n += r.delete(*batch)
            batch = []
    if batch:
        n += r.delete(*batch)
    return n


def bare_fields() -> dict[str, Any]:
    return {"i": uuid.uuid4().hex, "n": FN, "b": BODY, "a": 1}


# -- the throwaway redis-server --------------------------------------------------------------


class OwnRedis:
    """A redis-server we start on a free loopback port and stop by its own pid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="engine-bench-redis-")
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


# -- child processes ---------------------------------------------------------------------------


class Child:
    """This file run with ``--role``: ready -> go -> ... -> SIGTERM -> one JSON line."""

    def __init__(self, role: str, url: str, prefix: str, name: str, *extra: str) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--role", role]
        cmd += ["--redis-url", url, "--prefix", prefix, "--name", name, *extra]
        self.role = role
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.kill()
            raise RuntimeError(f"{self.role} child did not get ready (got {line!r})")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def cpu(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> dict[str, Any]:
        """SIGTERM (graceful for engine workers), wait bounded, then SIGKILL; parse output."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, _ = self.proc.communicate(timeout=5)
        for line in reversed((out or "").strip().splitlines()):
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    return doc
        return {}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _child_ready_then_wait_for_go() -> bool:
    print("ready", flush=True)
    return sys.stdin.readline().strip() == "go"


def _rusage_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def role_engine_worker(args: argparse.Namespace) -> None:
    from celery_docket.engine import Docket, Outcome, Worker, WorkerSettings

    d = Docket(args.redis_url, prefix=args.prefix)
    settings = WorkerSettings(queues=[QUEUE], pool="solo", prefetch=256, name=args.name)
    w = Worker(d, lambda delivery: Outcome.done(), settings)
    w.install_signal_handlers()
    if not _child_ready_then_wait_for_go():
        return
    cpu0 = _rusage_cpu()
    if args.profile_out:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        try:
            w.run()
        finally:
            prof.disable()
            prof.dump_stats(args.profile_out)
    else:
        w.run()
    print(json.dumps({"processed": w.processed, "cpu": _rusage_cpu() - cpu0}), flush=True)


def role_bare_drainer(args: argparse.Namespace) -> None:
    r: Any = redis.Redis.from_url(args.redis_url)
    stream, group = f"{args.prefix}:bare", "bare"
    consumer = f"{args.name}:{os.getpid()}"
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    handled: list[int] = [0]

    def handler(_fields: dict[bytes, bytes]) -> None:
        handled[0] += 1

    r.ping()
    if not _child_ready_then_wait_for_go():
        return
    cpu0 = _rusage_cpu()
    processed = 0
    while not stopping:
        reply = r.xreadgroup(group, consumer, {stream: ">"}, count=100, block=1000)
        for _stream, entries in reply or []:
            ids = []
            for mid, fields in entries:
                handler(fields)
                ids.append(mid)
            if ids:
                pipe = r.pipeline(transaction=False)
                pipe.xack(stream, group, *ids)
                pipe.xdel(stream, *ids)
                pipe.execute()
                processed += len(ids)
    print(json.dumps({"processed": processed, "cpu": _rusage_cpu() - cpu0}), flush=True)


def role_native_worker(args: argparse.Namespace) -> None:
    from celery_docket.engine import Docket

    d = Docket(args.redis_url, prefix=args.prefix)
    d.task(noop)
    w = d.worker(pool=args.pool, name=args.name)
    w.install_signal_handlers()
    if not _child_ready_then_wait_for_go():
        return
    w.run()
    print(json.dumps({"processed": w.processed}), flush=True)


def role_late_worker(args: argparse.Namespace) -> None:
    from celery_docket.engine import Docket, Outcome, Worker, WorkerSettings

    d = Docket(args.redis_url, prefix=args.prefix)
    starts: dict[str, float] = {}

    def handler(delivery: Any) -> Any:
        starts[delivery.execution_id] = time.time()
        return Outcome.done()

    w = Worker(d, handler, WorkerSettings(queues=[QUEUE], pool="solo", name=args.name))
    w.install_signal_handlers()
    if not _child_ready_then_wait_for_go():
        return
    w.run()
    print(json.dumps({"processed": w.processed, "starts": starts}), flush=True)


ROLES: dict[str, Callable[[argparse.Namespace], None]] = {
    "engine-worker": role_engine_worker,
    "bare-drainer": role_bare_drainer,
    "native-worker": role_native_worker,
    "late-worker": role_late_worker,
}


# -- phases ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, url: str, prefix: str, args: argparse.Namespace) -> None:
        self.url = url
        self.prefix = prefix
        self.args = args
        self.r: Any = redis.Redis.from_url(url)
        self.results: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []

    def record(self, key: str, runs: Sequence[float]) -> None:
        self.results[key] = summary(runs)

    def docket(self, prefix: str) -> Any:
        from celery_docket.engine import Docket

        return Docket(self.url, prefix=prefix)

    # 0: context ---------------------------------------------------------------------------------

    def context(self) -> None:
        for _ in range(100):
            self.r.ping()
        rtts = []
        for _ in range(2000):
            t = time.perf_counter()
            self.r.ping()
            rtts.append(time.perf_counter() - t)
        self.record("ping_rtt_p50_us", [percentile(rtts, 50) * 1e6])
        progress(f"context: redis-py PING round trip p50 {percentile(rtts, 50) * 1e6:.0f} us")

    # 1: single enqueue ------------------------------------------------------------------------

    def single_enqueue(self) -> None:
        from celery_docket.engine import Call

        n, engine, bare, ratio, load = self.args.single, [], [], [], []
        blocks = max(1, min(10, n // 500))
        per_block = max(1, n // blocks)
        n = per_block * blocks
        progress(
            f"phase 1: single enqueue, {n} x enqueue(Call) vs {n} x XADD, interleaved in "
            f"{blocks} blocks, {self.args.reps} reps"
        )
        for rep in range(self.args.reps):
            pfx = f"{self.prefix}-p1-{rep}"
            d = self.docket(pfx)
            r: Any = redis.Redis.from_url(self.url)
            stream = f"{pfx}:bare"
            for _ in range(300):  # warm up connections, script-free hot path, allocator
                d.enqueue(Call(FN, BODY))
                r.xadd(stream, bare_fields())

            def run_engine(d: Any = d) -> float:
                t = time.perf_counter()
                for _ in range(per_block):
                    d.enqueue(Call(FN, BODY))
                return time.perf_counter() - t

            def run_bare(r: Any = r, stream: str = stream) -> float:
                t = time.perf_counter()
                for _ in range(per_block):
                    r.xadd(stream, {"i": uuid.uuid4().hex, "n": FN, "b": BODY, "a": 1})
                return time.perf_counter() - t

            # Alternate engine and bare in blocks so both see the same machine load.
            meter = LoadMeter(self.r)
            t_engine = t_bare = 0.0
            for block in range(blocks):
                if (block + rep) % 2:
                    t_bare += run_bare()
                    t_engine += run_engine()
                else:
                    t_engine += run_engine()
                    t_bare += run_bare()
            load.append(meter.cores())
            e, b = n / t_engine, n / t_bare
            engine.append(e)
            bare.append(b)
            ratio.append(e / b)
            d.close()
            r.close()
            delete_prefix(self.r, pfx)
            progress(
                f"  rep {rep + 1}: engine {e:,.0f}/s, bare XADD {b:,.0f}/s ({e / b:.2f}); "
                f"other processes {load[-1]:.2f} cores"
            )
        self.record("foreign_cores_p1", load)
        self.record("single_enqueue_engine", engine)
        self.record("single_enqueue_bare", bare)
        self.record("single_enqueue_ratio", ratio)

    # 2: batch enqueue -------------------------------------------------------------------------

    def batch_enqueue(self) -> None:
        from celery_docket.engine import Call

        n, engine, bare, ratio, load = self.args.batch, [], [], [], []
        progress(
            f"phase 2: batch enqueue, enqueue_many({n}) vs pipelined XADD, {self.args.reps} reps"
        )
        for rep in range(self.args.reps):
            pfx = f"{self.prefix}-p2-{rep}"
            d = self.docket(pfx)
            r: Any = redis.Redis.from_url(self.url)
            stream = f"{pfx}:bare"
            d.enqueue_many([Call(FN, BODY) for _ in range(1000)])  # warm up
            calls = [Call(FN, BODY) for _ in range(n)]

            def run_engine(d: Any = d, calls: list[Any] = calls) -> float:
                t = time.perf_counter()
                d.enqueue_many(calls)
                return float(n / (time.perf_counter() - t))

            def run_bare(r: Any = r, stream: str = stream) -> float:
                t = time.perf_counter()
                bare_pipelined_xadd(r, stream, n)
                return float(n / (time.perf_counter() - t))

            meter = LoadMeter(self.r)
            if rep % 2:
                b, e = run_bare(), run_engine()
            else:
                e, b = run_engine(), run_bare()
            load.append(meter.cores())
            engine.append(e)
            bare.append(b)
            ratio.append(e / b)
            d.close()
            r.close()
            delete_prefix(self.r, pfx)
            progress(
                f"  rep {rep + 1}: enqueue_many {e:,.0f}/s, pipelined XADD {b:,.0f}/s "
                f"({e / b:.2f}); other processes {load[-1]:.2f} cores"
            )
        self.record("foreign_cores_p2", load)
        self.record("batch_enqueue_engine", engine)
        self.record("batch_enqueue_bare", bare)
        self.record("batch_enqueue_ratio", ratio)

    # 3 + 6: drain and CPU per task ----------------------------------------------------------

    def _drain(self, children: list[Child], stream: str, group: str, n: int) -> dict[str, Any]:
        """Go, poll XLEN/XPENDING until empty, stop; rate and CPU per task."""
        try:
            for c in children:
                c.wait_ready()
            cpu0 = [c.cpu() for c in children]
            rcpu0 = redis_cpu_seconds(self.r)
            stats0 = command_stats(self.r)
            sys0, own0 = system_busy_seconds(), own_cpu_seconds()
            poll = self.args.poll_ms / 1000.0
            t0 = time.perf_counter()
            for c in children:
                c.go()
            deadline = t0 + self.args.drain_timeout
            while True:
                time.sleep(poll)
                pipe = self.r.pipeline(transaction=False)
                pipe.xlen(stream)
                pipe.xpending(stream, group)
                length, pending = pipe.execute()
                now = time.perf_counter()
                if length == 0 and int(pending["pending"]) == 0:
                    break
                if now > deadline or not all(c.alive() for c in children):
                    raise RuntimeError(
                        f"drain of {stream} did not finish: {length} left, "
                        f"{pending['pending']} pending, children alive "
                        f"{[c.alive() for c in children]}"
                    )
            elapsed = now - t0
            cpu1 = [c.cpu() for c in children]
            sys1, own1 = system_busy_seconds(), own_cpu_seconds()
            rcpu1 = redis_cpu_seconds(self.r)
            stats1 = command_stats(self.r)
        finally:
            outs = [c.stop() for c in children]
        processed = sum(int(o.get("processed", 0)) for o in outs)
        deltas = [b - a for a, b in zip(cpu0, cpu1) if a is not None and b is not None]
        if len(deltas) == len(children):
            worker_cpu = sum(deltas)
            cpu_source = "/proc"
        else:  # no /proc: the children's own rusage from go to exit
            worker_cpu = sum(float(o.get("cpu", 0.0)) for o in outs)
            cpu_source = "rusage"
        redis_cpu = rcpu1 - rcpu0
        foreign = float("nan")
        if sys0 is not None and sys1 is not None:
            ours = worker_cpu + redis_cpu + (own1 - own0)
            foreign = max(0.0, (sys1 - sys0) - ours) / elapsed
        return {
            "elapsed": elapsed,
            "rate": n / elapsed,
            "foreign_cores": foreign,
            "commandstats": stats_delta(stats0, stats1),
            "processed": processed,
            "worker_cpu_us_per_task": worker_cpu / n * 1e6,
            "redis_cpu_us_per_task": redis_cpu / n * 1e6,
            "cpu_source": cpu_source,
            "per_worker": [int(o.get("processed", 0)) for o in outs],
        }

    def _engine_drain(self, pfx: str, n: int, profile_out: str | None = None) -> dict[str, Any]:
        from celery_docket.engine import Call

        d = self.docket(pfx)
        d.ensure_group(QUEUE)
        t = time.perf_counter()
        d.enqueue_many(Call(FN, BODY) for _ in range(n))
        prefill_rate = n / (time.perf_counter() - t)
        stream = d.keys(QUEUE).stream
        d.close()
        children = []
        for i in range(2):
            extra = ["--profile-out", profile_out] if (profile_out and i == 0) else []
            children.append(Child("engine-worker", self.url, pfx, f"bench-w{i}", *extra))
        out = self._drain(children, stream, "workers", n)
        out["prefill_rate"] = prefill_rate
        return out

    def _bare_drain(self, pfx: str, n: int) -> dict[str, Any]:
        stream = f"{pfx}:bare"
        self.r.xgroup_create(stream, "bare", id="0", mkstream=True)
        bare_pipelined_xadd(self.r, stream, n)
        children = [Child("bare-drainer", self.url, pfx, f"bare-{i}") for i in range(2)]
        return self._drain(children, stream, "bare", n)

    def drain(self) -> None:
        n = self.args.tasks
        keys = ("rate", "worker_cpu_us_per_task", "redis_cpu_us_per_task", "foreign_cores")
        cmd: dict[str, dict[str, list[int]]] = {"engine": {}, "bare": {}}
        eng: dict[str, list[float]] = {k: [] for k in (*keys, "prefill_rate")}
        bare: dict[str, list[float]] = {k: [] for k in keys}
        ratio: list[float] = []
        progress(
            f"phase 3: drain {n:,} no-op tasks with 2 worker processes vs 2 bare "
            f"XREADGROUP/XACK/XDEL processes, {self.args.reps} reps"
        )
        for rep in range(self.args.reps):
            pfx = f"{self.prefix}-p3-{rep}"
            order = ("bare", "engine") if rep % 2 else ("engine", "bare")
            got: dict[str, dict[str, Any] | None] = {}
            for which in order:
                try:
                    if which == "engine":
                        got[which] = self._engine_drain(pfx, n)
                    else:
                        got[which] = self._bare_drain(pfx, n)
                except RuntimeError as exc:
                    self.failures.append(f"drain rep {rep + 1} {which}: {exc}")
                    progress(f"  rep {rep + 1}: {which} drain FAILED: {exc}")
                    got[which] = None
                delete_prefix(self.r, pfx)
            e, b = got["engine"], got["bare"]
            for which, res in got.items():
                for name, (calls, usec) in (res or {}).get("commandstats", {}).items():
                    acc = cmd[which].setdefault(name, [0, 0])
                    acc[0] += calls
                    acc[1] += usec
            for k in keys:
                eng[k].append(e[k] if e else float("nan"))
                bare[k].append(b[k] if b else float("nan"))
            eng["prefill_rate"].append(e["prefill_rate"] if e else float("nan"))
            ratio.append(e["rate"] / b["rate"] if e and b else float("nan"))
            if e and b:
                progress(
                    f"  rep {rep + 1}: engine {e['rate']:,.0f}/s ({e['elapsed']:.2f}s, per worker "
                    f"{e['per_worker']}, {e['worker_cpu_us_per_task']:.1f} us CPU/task), "
                    f"bare {b['rate']:,.0f}/s ({b['elapsed']:.2f}s, "
                    f"{b['worker_cpu_us_per_task']:.1f} us CPU/task), ratio {e['rate'] / b['rate']:.2f}"
                )
        for k in keys:
            self.record(f"drain_{k}_engine", eng[k])
            self.record(f"drain_{k}_bare", bare[k])
        self.record("drain_prefill_rate_engine", eng["prefill_rate"])
        self.record("drain_ratio", ratio)
        done_reps = {
            "engine": sum(1 for r in eng["rate"] if r == r),  # r == r: not NaN (failed)
            "bare": sum(1 for r in bare["rate"] if r == r),
        }
        for which, table in cmd.items():
            tasks = max(1, done_reps[which]) * n
            self.results[f"drain_commandstats_{which}"] = {
                name: {"calls_per_task": c / tasks, "usec_per_task": u / tasks}
                for name, (c, u) in sorted(table.items(), key=lambda kv: -kv[1][1])
            }

    def profile(self) -> None:
        import pstats

        n = self.args.tasks
        progress(f"profile: one more engine drain of {n:,} with worker 0 under cProfile")
        pfx = f"{self.prefix}-prof"
        fd, path = tempfile.mkstemp(prefix="engine-bench-", suffix=".prof")
        os.close(fd)
        try:
            out = self._engine_drain(pfx, n, profile_out=path)
            buf = io.StringIO()
            stats = pstats.Stats(path, stream=buf)
            stats.sort_stats("tottime").print_stats(25)
            text = buf.getvalue()
            text = text[text.find("   ncalls") if "   ncalls" in text else 0 :]
            head = buf.getvalue().split("\n")
            total = next((ln.strip() for ln in head if "function calls" in ln), "")
            self.results["profile"] = {
                "drain_rate_profiled": out["rate"],
                "per_worker": out["per_worker"],
                "total": total,
                "top25_tottime": text,
            }
            progress(f"  profiled drain: {out['rate']:,.0f}/s, per worker {out['per_worker']}")
        except RuntimeError as exc:
            self.failures.append(f"profile drain: {exc}")
        finally:
            delete_prefix(self.r, pfx)
            os.unlink(path)

    # 4: delay -> result latency -------------------------------------------------------------

    def latency(self) -> None:
        n = self.args.round_trips
        progress(
            f"phase 4: delay->result latency, {n} sequential d.add(noop)() + d.result(), "
            f"pools solo and threads, {self.args.reps} reps"
        )
        load: list[float] = []
        for pool in ("solo", "threads"):
            p50s, p99s = [], []
            for rep in range(self.args.reps):
                pfx = f"{self.prefix}-p4-{pool}-{rep}"
                child = Child("native-worker", self.url, pfx, f"lat-{pool}", "--pool", pool)
                try:
                    child.wait_ready()
                    child.go()
                    d = self.docket(pfx)
                    d.task(noop)
                    for _ in range(50):  # warm up (also waits out the worker's startup)
                        d.result(d.add(noop)().id, timeout=10)
                    lat = []
                    meter = LoadMeter(self.r, [child.pid])
                    stats0 = command_stats(self.r)
                    for _ in range(n):
                        t = time.perf_counter()
                        e = d.add(noop)()
                        d.result(e.id, timeout=5)
                        lat.append(time.perf_counter() - t)
                    per_rt = stats_delta(stats0, command_stats(self.r))
                    load.append(meter.cores())
                    if rep == 0:
                        self.results[f"latency_{pool}_commands_per_round_trip"] = {
                            name: {"calls": c / n, "usec": u / n}
                            for name, (c, u) in sorted(per_rt.items(), key=lambda kv: -kv[1][0])
                        }
                    d.close()
                except Exception as exc:  # a timeout or a dead worker: report, go on
                    self.failures.append(f"latency {pool} rep {rep + 1}: {exc!r}")
                    progress(f"  {pool} rep {rep + 1}: FAILED: {exc!r}")
                    lat = []
                finally:
                    child.stop()
                    delete_prefix(self.r, pfx)
                p50 = percentile(lat, 50) * 1e3 if lat else float("nan")
                p99 = percentile(lat, 99) * 1e3 if lat else float("nan")
                p50s.append(p50)
                p99s.append(p99)
                progress(f"  {pool} rep {rep + 1}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            self.record(f"latency_{pool}_p50_ms", p50s)
            self.record(f"latency_{pool}_p99_ms", p99s)
        self.record("foreign_cores_p4", load)

    # 5: countdown lateness ------------------------------------------------------------------

    def _wait_idle(self, d: Any, timeout: float) -> None:
        k = d.keys(QUEUE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pipe = self.r.pipeline(transaction=False)
            pipe.zcard(k.due)
            pipe.xlen(k.stream)
            due, length = pipe.execute()
            if due == 0 and length == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"countdown tasks not done within {timeout:.0f}s")

    def lateness(self) -> None:
        from celery_docket.engine import Call

        n = self.args.countdown
        progress(
            f"phase 5: countdown lateness, {n} x when=+1s in one burst and {n} x when=+1s "
            f"sent 10 ms apart, {self.args.reps} reps"
        )
        late: dict[str, dict[str, list[float]]] = {
            kind: {"p50": [], "p99": [], "min": [], "max": []} for kind in ("burst", "spaced")
        }
        early_total = 0
        counted = 0
        load: list[float] = []
        for rep in range(self.args.reps):
            pfx = f"{self.prefix}-p5-{rep}"
            child = Child("late-worker", self.url, pfx, "late")
            due_ms: dict[str, int] = {}
            try:
                child.wait_ready()
                child.go()
                d = self.docket(pfx)
                d.enqueue_many([Call(FN, BODY) for _ in range(5)])
                self._wait_idle(d, 10)
                meter = LoadMeter(self.r, [child.pid])
                burst = [
                    Call(FN, BODY, when=timedelta(seconds=1), execution_id=f"burst-{i}")
                    for i in range(n)
                ]
                for e in d.enqueue_many(burst):
                    due_ms[e.id] = int(e.when_ms)
                self._wait_idle(d, 15)
                start = time.monotonic()
                for i in range(n):
                    wait = start + i * 0.010 - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    e = d.enqueue(
                        Call(FN, BODY, when=timedelta(seconds=1), execution_id=f"spaced-{i}")
                    )
                    due_ms[e.id] = int(e.when_ms)
                self._wait_idle(d, 15)
                load.append(meter.cores())
                d.close()
            except Exception as exc:
                self.failures.append(f"lateness rep {rep + 1}: {exc!r}")
                progress(f"  rep {rep + 1}: FAILED: {exc!r}")
            finally:
                out = child.stop()
                delete_prefix(self.r, pfx)
            starts = out.get("starts", {})
            parts = []
            for kind in ("burst", "spaced"):
                values = [
                    (starts[i] - due / 1000.0) * 1e3
                    for i, due in due_ms.items()
                    if i.startswith(kind) and i in starts
                ]
                missing = sum(1 for i in due_ms if i.startswith(kind) and i not in starts)
                if missing:
                    self.failures.append(f"lateness rep {rep + 1} {kind}: {missing} never started")
                early_total += sum(1 for v in values if v < 0)
                counted += len(values)
                stats = late[kind]
                if values:
                    stats["p50"].append(percentile(values, 50))
                    stats["p99"].append(percentile(values, 99))
                    stats["min"].append(min(values))
                    stats["max"].append(max(values))
                    parts.append(
                        f"{kind} p50 {percentile(values, 50):.1f} ms p99 "
                        f"{percentile(values, 99):.1f} ms min {min(values):.1f} ms"
                    )
                else:
                    for key in stats:
                        stats[key].append(float("nan"))
            progress(f"  rep {rep + 1}: " + "; ".join(parts))
        for kind, stats in late.items():
            for key, runs in stats.items():
                self.record(f"lateness_{kind}_{key}_ms", runs)
        self.results["lateness_early"] = {"early": early_total, "of": counted}
        self.record("foreign_cores_p5", load)


def bare_pipelined_xadd(r: Any, stream: str, n: int) -> None:
    for start in range(0, n, 1000):
        pipe = r.pipeline(transaction=False)
        for _ in range(min(1000, n - start)):
            pipe.xadd(stream, {"i": uuid.uuid4().hex, "n": FN, "b": BODY, "a": 1})
        pipe.execute()


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
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), "")
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "redis_py": redis.__version__,
        "hiredis": version("hiredis"),
        "hiredis_parser_in_use": bool(getattr(redis.utils, "HIREDIS_AVAILABLE", False)),
        "celery_docket": version("celery-docket"),
        "redis_server": server.get("redis_version"),
        "redis_url": url.split("@")[-1],
        "redis_started_by_bench": own,
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def render(results: dict[str, Any], machine: dict[str, Any], args: argparse.Namespace) -> str:
    R = results.get
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, engine: str = "", bare: str = "", ratio: str = "") -> None:
        rows.append((label, engine, bare, ratio))

    row(
        "1 single enqueue, ops/s (1 thread)",
        fmt(R("single_enqueue_engine")),
        fmt(R("single_enqueue_bare")),
        fmt(R("single_enqueue_ratio"), ".2f"),
    )
    row(
        f"2 batch enqueue_many({args.batch:,}), calls/s",
        fmt(R("batch_enqueue_engine")),
        fmt(R("batch_enqueue_bare")),
        fmt(R("batch_enqueue_ratio"), ".2f"),
    )
    row(f"  enqueue_many({args.tasks:,}) prefill, calls/s", fmt(R("drain_prefill_rate_engine")))
    ratio = R("drain_ratio")
    verdict = ""
    if ratio and ratio.get("median") is not None:
        verdict = "  PASS (>= 0.40)" if ratio["median"] >= 0.40 else "  BELOW 0.40 target"
    row(
        f"3 drain {args.tasks:,} no-ops, 2 procs, tasks/s",
        fmt(R("drain_rate_engine")),
        fmt(R("drain_rate_bare")),
        fmt(ratio, ".2f") + verdict,
    )
    for pool in ("solo", "threads"):
        row(f"4 delay->result p50, ms ({pool})", fmt(R(f"latency_{pool}_p50_ms"), ".2f"))
        row(f"  delay->result p99, ms ({pool})", fmt(R(f"latency_{pool}_p99_ms"), ".2f"))
    for kind, label in (
        ("burst", f"{args.countdown} in 1 burst"),
        ("spaced", f"{args.countdown} x 10 ms apart"),
    ):
        row(f"5 countdown +1s {label}: lateness p50, ms", fmt(R(f"lateness_{kind}_p50_ms"), ".1f"))
        row("    p99, ms", fmt(R(f"lateness_{kind}_p99_ms"), ".1f"))
        row("    min, ms (negative = early)", fmt(R(f"lateness_{kind}_min_ms"), ".1f"))
        row("    max, ms", fmt(R(f"lateness_{kind}_max_ms"), ".1f"))
    early = R("lateness_early") or {}
    row("  early starts (before due)", f"{early.get('early', 'n/a')} of {early.get('of', 'n/a')}")
    e_cpu, b_cpu = R("drain_worker_cpu_us_per_task_engine"), R("drain_worker_cpu_us_per_task_bare")
    cpu_ratio = ""
    if e_cpu and b_cpu and e_cpu.get("median") and b_cpu.get("median"):
        cpu_ratio = f"{e_cpu['median'] / b_cpu['median']:.2f}x"
    row("6 CPU/task, worker procs user+sys, us", fmt(e_cpu, ".1f"), fmt(b_cpu, ".1f"), cpu_ratio)
    row(
        "  CPU/task, redis-server user+sys, us",
        fmt(R("drain_redis_cpu_us_per_task_engine"), ".1f"),
        fmt(R("drain_redis_cpu_us_per_task_bare"), ".1f"),
    )
    row(
        "  other processes' CPU during drain, cores",
        fmt(R("drain_foreign_cores_engine"), ".2f"),
        fmt(R("drain_foreign_cores_bare"), ".2f"),
    )
    others = []
    for phase in ("1", "2", "4", "5"):
        s = R(f"foreign_cores_p{phase}")
        if s and s.get("max") is not None:
            others.append(f"p{phase} {s['max']:.2f}")
    if others:
        row("  other processes' CPU, phases 1/2/4/5, cores (max)", ", ".join(others))
    row("  context: redis-py PING round trip p50, us", fmt(R("ping_rtt_p50_us")))

    header = ("metric", "engine", "bare redis-py", "engine/bare")
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(4)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [
        f"celery_docket engine benchmark: {args.reps} repetitions, median [min-max]",
        f"redis-server {machine['redis_server']} at {machine['redis_url']}"
        f" ({'started by the bench' if machine['redis_started_by_bench'] else 'given'}),"
        f" Python {machine['python']}, redis-py {machine['redis_py']}"
        f" + hiredis {machine['hiredis']} (parser in use: {machine['hiredis_parser_in_use']}),"
        f" {machine['cpu_count']} CPUs {machine['cpu_model']}",
        "",
        line(header),
        line(tuple("-" * w for w in widths)),
        *(line(r) for r in rows),
    ]
    for which in ("engine", "bare"):
        stats = R(f"drain_commandstats_{which}")
        if not stats:
            continue
        out += [
            "",
            f"Redis time per drained task, {which} (INFO commandstats; evalsha includes "
            "the commands its script runs, which are listed too):",
        ]
        for name, v in list(stats.items())[:8]:
            out.append(
                f"  {name:<22} {v['calls_per_task']:8.3f} calls/task  "
                f"{v['usec_per_task']:7.2f} us/task"
            )
    for pool in ("solo", "threads"):
        per_rt = R(f"latency_{pool}_commands_per_round_trip")
        if per_rt:
            parts = ", ".join(f"{name} {v['calls']:.2f}" for name, v in per_rt.items())
            out += ["", f"Redis commands per delay->result round trip ({pool}, rep 1): {parts}"]
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------------


def parse(argv: Iterable[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--redis-url", help="use this Redis instead of starting a redis-server")
    p.add_argument("--tasks", type=int, default=100_000, help="tasks per drain (100000)")
    p.add_argument("--json", metavar="PATH", help="write results and machine info as JSON")
    p.add_argument("--reps", type=int, default=3, help="repetitions per measurement (3)")
    p.add_argument("--single", type=int, default=10_000, help="adds per single-enqueue run")
    p.add_argument("--batch", type=int, default=20_000, help="calls per enqueue_many run")
    p.add_argument("--round-trips", type=int, default=1000, help="latency round trips per run")
    p.add_argument("--countdown", type=int, default=200, help="countdown tasks per pattern")
    p.add_argument("--poll-ms", type=float, default=20.0, help="drain poll period (20 ms)")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="seconds per drain")
    p.add_argument("--profile", action="store_true", help="add a cProfiled engine drain")
    p.add_argument(
        "--only",
        default="1,2,3,4,5",
        help="comma-separated phases to run (CPU per task comes with 3)",
    )
    # child-process plumbing
    p.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    p.add_argument("--prefix", help=argparse.SUPPRESS)
    p.add_argument("--name", default="bench", help=argparse.SUPPRESS)
    p.add_argument("--pool", default="solo", help=argparse.SUPPRESS)
    p.add_argument("--profile-out", help=argparse.SUPPRESS)
    return p.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> int:
    args = parse(argv)
    if args.role:
        ROLES[args.role](args)
        return 0
    server: OwnRedis | None = None
    url = args.redis_url
    if url is None:
        server = OwnRedis().start()
        url = server.url
        progress(f"started redis-server pid {server.proc.pid if server.proc else '?'} on {url}")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    phases = {p.strip() for p in args.only.split(",")}
    try:
        bench = Bench(url, prefix, args)
        machine = machine_info(bench.r, url, server is not None)
        bench.context()
        if "1" in phases:
            bench.single_enqueue()
        if "2" in phases:
            bench.batch_enqueue()
        if "3" in phases:
            bench.drain()
        if "4" in phases:
            bench.latency()
        if "5" in phases:
            bench.lateness()
        if args.profile:
            bench.profile()
        delete_prefix(bench.r, prefix)
    finally:
        if server is not None:
            server.stop()
    progress("done")
    table = render(bench.results, machine, args)
    print(table)
    prof = bench.results.get("profile")
    if prof:
        print(
            f"\ncProfile of engine worker 0 during a drain ({prof['total']}; profiled drain "
            f"{prof['drain_rate_profiled']:,.0f}/s, per worker {prof['per_worker']}), "
            "top 25 by tottime:\n"
        )
        print(prof["top25_tottime"].rstrip())
    if bench.failures:
        print("\nFAILURES:\n  " + "\n  ".join(bench.failures))
    if hasattr(os, "getloadavg"):
        machine["loadavg_end"] = os.getloadavg()
    if args.json:
        doc = {
            "machine": machine,
            "settings": {
                k: v
                for k, v in vars(args).items()
                if k not in ("role", "prefix", "name", "pool", "profile_out")
            },
            "elapsed_seconds": time.monotonic() - T0,
            "results": bench.results,
            "failures": bench.failures,
            "table": table,
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2)
        progress(f"wrote {args.json}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
