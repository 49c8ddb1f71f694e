"""A Celery-API app for the prefork CLI test (broker and prefix from the environment)."""

from __future__ import annotations

import os
import time

from celery_docket import Celery

app = Celery("preforkapp", broker=os.environ["CD_TEST_BROKER"])
app.conf.docket_key_prefix = os.environ["CD_TEST_PREFIX"]
app.conf.docket_lease_seconds = 3
app.conf.docket_max_deliveries = 2


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
