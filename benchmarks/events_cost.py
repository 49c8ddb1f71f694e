#!/usr/bin/env python
"""What task events (``worker -E``) cost a draining worker, in CPU per task.

    python benchmarks/events_cost.py [--tasks 10000] [--reps 4] [--pool prefork -c 2]
                                     [--baseline /path/to/other/checkout]

Starts a throwaway redis-server on a loopback port, queues ``--tasks`` no-ops, starts the
``celery-docket`` CLI worker and times the drain from the first ack to an empty stream;
the CPU of the worker's process tree (start-up included) divided by the tasks is the
figure that matters on a shared machine, where wall-clock throughput swings with the
neighbours' load. Modes alternate in each repetition: ``off`` and ``on`` (``-E``); with
``--baseline`` also ``baseline``, the same worker without ``-E`` run from another checkout
(``PYTHONPATH``), to show that events off cost nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness.procs import process_tree, stop_tree, tree_cpu_seconds  # noqa: E402
from benchmarks.harness.redis_server import bench_server  # noqa: E402

APP = """
import os
from celery_docket import Celery

app = Celery("evcost", broker=os.environ["EVCOST_URL"])


@app.task(name="evcost.noop", ignore_result=True)
def noop():
    return None
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--pool", default="prefork")
    p.add_argument("-c", "--concurrency", type=int, default=2)
    p.add_argument("--baseline", help="another checkout to run without -E, for comparison")
    args = p.parse_args()
    modes = ["off", "on"] + (["baseline"] if args.baseline else [])
    workdir = Path(tempfile.mkdtemp(prefix="evcost-"))
    (workdir / "evcost_app.py").write_text(textwrap.dedent(APP))
    server = bench_server().start()
    os.environ["EVCOST_URL"] = server.url
    sys.path.insert(0, str(workdir))
    import evcost_app  # type: ignore[import-not-found]

    redis = evcost_app.app.docket.redis
    stream = evcost_app.app.docket.keys("celery").stream
    exe = str(Path(sys.executable).parent / "celery-docket")
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    rate: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for rep in range(args.reps):
            for mode in modes if rep % 2 == 0 else modes[::-1]:
                redis.flushdb()
                for _ in range(args.tasks):
                    evcost_app.noop.delay()
                cmd = [exe, "-A", "evcost_app", "worker", "-P", args.pool]
                cmd += ["-c", str(args.concurrency), "-l", "WARNING"]
                cmd += ["-E"] if mode == "on" else []
                code = args.baseline if mode == "baseline" else str(ROOT)
                env = dict(os.environ, PYTHONPATH=f"{code}{os.pathsep}{workdir}")
                worker = subprocess.Popen(
                    cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                try:
                    while redis.xlen(stream) >= args.tasks:
                        time.sleep(0.002)
                    t1 = time.monotonic()
                    while redis.xlen(stream) > 0:
                        time.sleep(0.005)
                    t2 = time.monotonic()
                    used = tree_cpu_seconds(process_tree(worker.pid))
                finally:
                    stop_tree(worker, timeout=30)
                cpu[mode].append(used / args.tasks * 1e6)
                rate[mode].append(args.tasks / (t2 - t1))
                print(
                    f"{mode:8} rep {rep}: {rate[mode][-1]:7.0f} tasks/s  {cpu[mode][-1]:5.0f} µs CPU/task"
                )
    finally:
        server.remove()
    for mode in modes:
        print(
            f"{mode:8} median {statistics.median(rate[mode]):7.0f} tasks/s"
            f"  {statistics.median(cpu[mode]):5.0f} µs CPU/task"
        )


if __name__ == "__main__":
    main()
