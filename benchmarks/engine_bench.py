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
import json
import os
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.enginebench.phases import Bench
from benchmarks.enginebench.roles import ROLES
from benchmarks.harness.log import T0, progress
from benchmarks.harness.machine import machine_info
from benchmarks.harness.redis_data import delete_prefix
from benchmarks.harness.redis_server import bench_server
from benchmarks.harness.stats import fmt

# -- report ------------------------------------------------------------------------------------


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
    server = None
    url = args.redis_url
    if url is None:
        try:
            server = bench_server().start()
        except RuntimeError as exc:
            raise SystemExit(f"{exc}; pass --redis-url") from exc
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
            server.remove()
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
