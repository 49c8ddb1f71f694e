"""A prefork pool for the fault tests: a supervisor and its children, probe tasks writing
the ledger of ``proc_worker``.

Usage::

    python tests/fault/prefork_proc.py REDIS_URL PREFIX LEDGER NAME [--processes 2]
        [--lease 2] [--time-limit 30]

Writes ``READY pid t consumer`` once per child (pid: the child) and ``SUP pid t`` for the
supervisor when it starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from celery_docket.engine import Docket
from celery_docket.engine.prefork import Supervisor
from tests.fault.proc_worker import Ledger, _tls, register_probes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("prefix")
    p.add_argument("ledger")
    p.add_argument("name")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--lease", type=float, default=2.0)
    p.add_argument("--time-limit", type=float, default=30.0)
    a = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {a.name}[%(process)d] %(levelname)s %(message)s"
    )

    def make_docket() -> Docket:
        return Docket(a.url, prefix=a.prefix)

    def make_worker(slot: int, slot_hook: Any) -> Any:
        ledger = Ledger(a.ledger, f"{a.name}-{slot}")
        docket = make_docket()
        register_probes(docket, ledger)
        worker = docket.worker(
            pool="solo", name=f"{a.name}-{slot}", lease_seconds=a.lease, block_ms=200
        )
        worker.hooks.add(slot_hook)
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
        return worker

    Ledger(a.ledger, a.name).write("SUP", os.getpid(), f"{time.time():.6f}")
    supervisor = Supervisor(
        make_worker,
        a.processes,
        make_docket=make_docket,
        time_limit=lambda _d: a.time_limit,
        lease_seconds=a.lease,
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
