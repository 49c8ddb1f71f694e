"""compare.py workloads 1-7 and the profiled runs; each fills ``Bench.raw`` per repetition."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from typing import Any

import redis

from benchmarks.comparebench.common import (
    DOCKET_GROUP,
    DOCKET_STREAM,
    LABEL,
    QUEUE,
    SYSTEMS,
    TARGETS,
    Failed,
    run_role,
)
from benchmarks.comparebench.profiles import glob_prof, profile_report
from benchmarks.comparebench.workers import WorkerProc
from benchmarks.harness.cpu import LoadMeter
from benchmarks.harness.log import progress
from benchmarks.harness.redis_data import wipe, with_db
from benchmarks.harness.stats import percentile, summary


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
