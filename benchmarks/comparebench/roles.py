"""compare.py child processes (``--role``): producers, the bulk fill, latency client, calibration."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.comparebench.common import (
    APP,
)
from benchmarks.harness.cpu import own_cpu_seconds


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
