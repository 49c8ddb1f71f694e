"""The real Celery app (producer and ``celery worker``) of the cutover tests."""

from __future__ import annotations

import os

from celery import Celery

from tests.cutover_apps.ledger import record

URL = os.environ.get("CUT_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("cut", broker=URL, backend=URL)
app.conf.worker_prefetch_multiplier = 4
app.conf.broker_connection_retry_on_startup = True
app.conf.result_expires = 3600


@app.task(name="cut.work", bind=True)
def work(self, n):
    record("celery", self.request.id)
    return n


@app.task(name="cut.add", bind=True)
def add(self, a, b):
    record("celery", self.request.id)
    return a + b


@app.task(name="cut.tsum", bind=True)
def tsum(self, values):
    record("celery", self.request.id)
    return sum(values)
