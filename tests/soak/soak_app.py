"""The Celery-API app of the soak job: a mix of what real apps send, on a real Redis.

Configured from the environment: CD_SOAK_BROKER and CD_SOAK_PREFIX.
"""

from __future__ import annotations

import os

from celery_docket import Celery

app = Celery("soak", broker=os.environ["CD_SOAK_BROKER"], backend=os.environ["CD_SOAK_BROKER"])
app.conf.docket_key_prefix = os.environ["CD_SOAK_PREFIX"]
app.conf.result_expires = 20  # results expire, so a steady load has a steady key count
app.conf.beat_schedule = {"heartbeat": {"task": "soak.add", "schedule": 1.0, "args": (0, 0)}}


@app.task(name="soak.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="soak.fail")
def fail(n: int) -> None:
    raise ValueError(f"soak failure {n}")


@app.task(name="soak.retry_once", bind=True, max_retries=1, default_retry_delay=0.2)
def retry_once(self, n: int) -> int:  # Celery's bound-task signature
    if self.request.retries == 0:
        raise self.retry()
    return n


@app.task(name="soak.ignored", ignore_result=True)
def ignored(n: int) -> None:
    return None
