"""engine_bench child processes: engine workers, the bare XREADGROUP drainer, phase 4/5 workers.

Each is ``engine_bench.py --role NAME``; it prints ``ready``, waits for ``go``, runs until
SIGTERM and prints one JSON line (see :class:`benchmarks.harness.procs.ReadyChild`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from benchmarks.harness.cpu import own_cpu_seconds
from benchmarks.harness.procs import ReadyChild, ready_then_wait_for_go

FN = "noop"
BODY = b"json:[[],{}]"
QUEUE = "default"
ENTRY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine_bench.py")
"""The script the children run (with ``--role``)."""


def noop() -> None:
    """The native task of phase 4 (registered under this module's name in parent and child)."""
    return None


def bare_fields() -> dict[str, Any]:
    return {"i": uuid.uuid4().hex, "n": FN, "b": BODY, "a": 1}


# -- child processes ---------------------------------------------------------------------------


class Child(ReadyChild):
    """engine_bench.py run with ``--role``: ready -> go -> ... -> SIGTERM -> one JSON line."""

    def __init__(self, role: str, url: str, prefix: str, name: str, *extra: str) -> None:
        cmd = [sys.executable, ENTRY, "--role", role]
        cmd += ["--redis-url", url, "--prefix", prefix, "--name", name, *extra]
        super().__init__(cmd, name=role)
        self.role = role


def role_engine_worker(args: argparse.Namespace) -> None:
    from celery_docket.engine import Docket, Outcome, Worker, WorkerSettings

    d = Docket(args.redis_url, prefix=args.prefix)
    settings = WorkerSettings(queues=[QUEUE], pool="solo", prefetch=256, name=args.name)
    w = Worker(d, lambda delivery: Outcome.done(), settings)
    w.install_signal_handlers()
    if not ready_then_wait_for_go():
        return
    cpu0 = own_cpu_seconds()
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
    print(json.dumps({"processed": w.processed, "cpu": own_cpu_seconds() - cpu0}), flush=True)


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
    if not ready_then_wait_for_go():
        return
    cpu0 = own_cpu_seconds()
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
    print(json.dumps({"processed": processed, "cpu": own_cpu_seconds() - cpu0}), flush=True)


def role_native_worker(args: argparse.Namespace) -> None:
    from celery_docket.engine import Docket

    d = Docket(args.redis_url, prefix=args.prefix)
    d.task(noop)
    w = d.worker(pool=args.pool, name=args.name)
    w.install_signal_handlers()
    if not ready_then_wait_for_go():
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
    if not ready_then_wait_for_go():
        return
    w.run()
    print(json.dumps({"processed": w.processed, "starts": starts}), flush=True)


ROLES: dict[str, Callable[[argparse.Namespace], None]] = {
    "engine-worker": role_engine_worker,
    "bare-drainer": role_bare_drainer,
    "native-worker": role_native_worker,
    "late-worker": role_late_worker,
}
