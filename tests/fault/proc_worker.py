"""A worker subprocess for the fault-injection tests, with probe tasks that write a ledger.

Usage::

    python tests/fault/proc_worker.py REDIS_URL PREFIX LEDGER NAME [--pool threads]
        [--lease 2] [--concurrency 4] [--max-deliveries 5] [--perpetual-every S]
        [--perpetual-refresh S]

LEDGER is a directory (or ``file://`` URL) outside the Redis under test. Every process appends
to its own file ``<name>-<pid>.log`` with one ``os.write`` per line on an ``O_APPEND``
descriptor, so a line is either whole or absent even when the process is SIGKILLed:

* ``READY pid t`` the worker is consuming; ``EXIT pid t`` ``run()`` returned;
* ``START id attempt pid t mid token`` a probe task began (attempt: the delivery count);
* ``RET id pid t token`` the probe task returned (its outcome is not committed yet).

The test process adds ``ENQ id t`` after ``add`` returned and ``END id pid t`` when it saw the
engine commit (the result of a probe carries the pid and token of the run that committed).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from celery_docket.engine import Docket, Perpetual

WORK = "probe.work"
TICK = "probe.tick"

_tls = threading.local()


class Ledger:
    """Append-only, one file per process; lines are written with a single syscall."""

    def __init__(self, location: str, name: str) -> None:
        directory = location[len("file://") :] if location.startswith("file://") else location
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{name}-{os.getpid()}.log")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, *fields: Any) -> None:
        os.write(self.fd, (" ".join(str(f) for f in fields) + "\n").encode())


def register_probes(
    docket: Docket,
    ledger: Ledger | None = None,
    *,
    perpetual_every: float | None = None,
    tick_ms: int = 100,
) -> None:
    """Register the probe tasks (the test process registers the same names to add them)."""

    def begin() -> tuple[str, int, str]:
        d = getattr(_tls, "delivery", None)
        token = uuid.uuid4().hex[:12]
        eid = d.execution_id if d is not None else "?"
        count = d.delivery_count if d is not None else 0
        if ledger is not None:
            mid = d.message_id if d is not None else "?"
            ledger.write("START", eid, count, os.getpid(), f"{time.time():.6f}", mid, token)
        return eid, count, token

    def end(eid: str, token: str) -> None:
        if ledger is not None:
            ledger.write("RET", eid, os.getpid(), f"{time.time():.6f}", token)

    def work(
        ms: int = 0,
        redelivered_ms: int | None = None,
        fail: bool = False,
        *,
        exit_code: int | None = None,
        gil_s: int = 0,
    ) -> dict[str, Any]:
        eid, count, token = begin()
        delay = ms if (count <= 1 or redelivered_ms is None) else redelivered_ms
        time.sleep(delay / 1000.0)
        if gil_s:  # one C call that keeps the GIL: no other thread of this process runs
            ctypes.PyDLL(None).sleep(gil_s)
        end(eid, token)
        if fail:
            raise RuntimeError(f"probe failure {eid}")
        if exit_code is not None:
            raise SystemExit(exit_code)
        return {"pid": os.getpid(), "tok": token, "dc": count}

    docket.task(work, name=WORK)

    if perpetual_every is not None:

        def tick() -> dict[str, Any]:
            eid, count, token = begin()
            time.sleep(tick_ms / 1000.0)
            end(eid, token)
            return {"pid": os.getpid(), "tok": token, "dc": count}

        docket.task(tick, name=TICK, perpetual=Perpetual(every=timedelta(seconds=perpetual_every)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("prefix")
    p.add_argument("ledger")
    p.add_argument("name")
    p.add_argument("--pool", default="threads", choices=["threads", "solo"])
    p.add_argument("--lease", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-deliveries", type=int, default=5)
    p.add_argument("--perpetual-every", type=float, default=None)
    p.add_argument("--perpetual-refresh", type=float, default=60.0)
    p.add_argument("--tick-ms", type=int, default=100)
    a = p.parse_args(argv)

    import logging

    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {a.name}[{os.getpid()}] %(levelname)s %(message)s"
    )
    ledger = Ledger(a.ledger, a.name)
    docket = Docket(a.url, prefix=a.prefix)
    register_probes(docket, ledger, perpetual_every=a.perpetual_every, tick_ms=a.tick_ms)
    worker = docket.worker(
        name=a.name,
        pool=a.pool,
        concurrency=a.concurrency,
        lease_seconds=a.lease,
        max_deliveries=a.max_deliveries,
        perpetual_refresh_seconds=a.perpetual_refresh,
        block_ms=200,
    )
    inner = worker.handler

    def handler(d: Any) -> Any:
        _tls.delivery = d
        try:
            return inner(d)
        finally:
            _tls.delivery = None

    worker.handler = handler

    def announce() -> None:
        if worker.ready.wait(60):
            ledger.write("READY", os.getpid(), f"{time.time():.6f}", worker.consumer)

    threading.Thread(target=announce, daemon=True).start()
    worker.install_signal_handlers()
    worker.run()
    ledger.write("EXIT", os.getpid(), f"{time.time():.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
