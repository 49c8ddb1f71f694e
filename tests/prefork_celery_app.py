"""A Celery-API app for the prefork CLI test (broker and prefix from the environment)."""

from __future__ import annotations

import os
import time

from celery_docket import Celery
from celery_docket.signals import worker_process_init, worker_process_shutdown

app = Celery("preforkapp", broker=os.environ["CD_TEST_BROKER"])
app.conf.docket_key_prefix = os.environ["CD_TEST_PREFIX"]
app.conf.docket_lease_seconds = 3
app.conf.docket_max_deliveries = 2
PROCESS_LOG = os.environ.get("CD_TEST_PROCESS_LOG")


def _record(event: str, **kwargs: object) -> None:
    if PROCESS_LOG:
        with open(PROCESS_LOG, "a") as f:
            f.write(f"{event} {os.getpid()} {kwargs.get('exitcode', '')}\n")


@worker_process_init.connect
def _process_started(**kwargs: object) -> None:
    _record("init")


@worker_process_shutdown.connect
def _process_stopping(pid: int, exitcode: int, **kwargs: object) -> None:
    assert pid == os.getpid()
    _record("shutdown", exitcode=exitcode)


@app.task(name="pf.pid")
def pid() -> int:
    return os.getpid()


@app.task(name="pf.sleep")
def sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@app.task(name="pf.early", acks_late=False)
def early() -> str:
    return "acked before running"


@app.task(name="pf.die")
def die() -> None:
    os._exit(3)
