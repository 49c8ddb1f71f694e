"""A tiny native-API app run by tests/test_prefork.py in a subprocess."""

from __future__ import annotations

import logging
import os
import sys
import time

from celery_docket.engine import Docket

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
docket = Docket(sys.argv[1], prefix=sys.argv[2])


@docket.task(name="pid")
def pid() -> int:
    return os.getpid()


@docket.task(name="sleep")
def sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@docket.task(name="die")
def die() -> None:
    os._exit(3)


if __name__ == "__main__":
    supervisor = docket.prefork(
        2,
        time_limit=float(sys.argv[3]),
        max_tasks=int(sys.argv[4]),
        lease_seconds=2.0,
        max_deliveries=2,
    )
    sys.exit(supervisor.run())
