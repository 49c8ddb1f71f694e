"""engine_bench phases 1-6 (and the profiled drain): each fills ``Bench.results``."""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import redis

from benchmarks.enginebench.roles import BODY, FN, QUEUE, Child, bare_fields, noop
from benchmarks.harness.cpu import (
    LoadMeter,
    own_cpu_seconds,
    redis_cpu_seconds,
    system_busy_seconds,
)
from benchmarks.harness.log import progress
from benchmarks.harness.redis_data import command_stats, delete_prefix, stats_delta
from benchmarks.harness.stats import percentile, summary

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
