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
   prefilled in bulk (the facade's message, fresh ids, ``enqueue_many``);
8. with ``--peers``: a ``--peer-tasks`` (2,000) no-op drain by 2 worker processes for Celery,
   celery_docket and each peer of ``benchmarks/peers/`` (huey, dramatiq, streaq, pydocket,
   ardiq; skipped with a note when not installed), with CPU per task of workers + Redis.

Child processes are this same file run with a hidden ``--role`` (producers, and the worker
when the ``celery-docket`` script is missing); workers are the real CLIs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.comparebench import common
from benchmarks.comparebench.bench import Bench
from benchmarks.comparebench.chart import chart_groups, chart_title, render_svg
from benchmarks.comparebench.common import (
    RESULTS_DIR,
    SYSTEMS,
    check_twins,
    imported_from,
    take_snapshot,
)
from benchmarks.comparebench.peers import render_peers, run_peers
from benchmarks.comparebench.profiles import render_profile
from benchmarks.comparebench.report import compare_machine_info, render
from benchmarks.comparebench.roles import ROLES
from benchmarks.comparebench.workers import worker_command
from benchmarks.harness.log import T0, progress
from benchmarks.harness.machine import git, source_hash
from benchmarks.harness.redis_data import with_db
from benchmarks.harness.redis_server import bench_server


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
    p.add_argument(
        "--only", default="1,3,4,5,7", help="workloads: 1 (=1+2+6b), 3, 4 (=4+6a), 5, 7, 8 (peers)"
    )
    p.add_argument("--peers", action="store_true", help="add workload 8: the peers' drain")
    p.add_argument("--peer-tasks", type=int, default=2_000, help="tasks per drain in 8 (2000)")
    p.add_argument("--peers-db", type=int, default=3, help="database of the peers (3)")
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
    if not args.no_snapshot:
        common.SNAPSHOT = take_snapshot()
    SNAPSHOT = common.SNAPSHOT
    server = None
    url = args.redis_url
    if url is None:
        try:
            server = bench_server().start()
        except RuntimeError as exc:
            raise SystemExit(f"{exc}; pass --redis-url") from exc
        url = server.url
        progress(f"started redis-server pid {server.proc.pid if server.proc else '?'} on {url}")
    only = {p.strip() for p in args.only.split(",")} | ({"8"} if args.peers else set())
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
        machine = compare_machine_info(bench.r["celery"], url, server is not None)
        machine["celery_docket_snapshot"] = bool(SNAPSHOT)
        if SNAPSHOT:
            machine["celery_docket_source_sha256_start"] = source_hash(Path(SNAPSHOT))
        where = imported_from(bench.url["docket"])
        machine["celery_docket_imported_from"] = where
        if SNAPSHOT and not where.startswith(SNAPSHOT):
            raise SystemExit(f"children do not import the snapshot of celery_docket: {where}")
        if "8" not in only:
            bench.notes.append("peers (huey, dramatiq, streaq, pydocket, ardiq): add --peers")
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
        if "8" in only:
            if args.redis_url and redis.Redis.from_url(with_db(url, args.peers_db)).dbsize():
                raise SystemExit(f"db {args.peers_db} is not empty: pick another with --peers-db")
            run_peers(bench, url)
        if args.profile:
            bench.profile()
    finally:
        for system in SYSTEMS:
            with contextlib.suppress(Exception):
                bench.clean(system)
        if server is not None:
            server.remove()
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
    peers_table = render_peers(bench.results)
    if peers_table:
        print("\n" + peers_table)
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
            "peers_table": peers_table,
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
