"""The celery_docket app of the cutover tests: the same task names, the intake switched on."""

from __future__ import annotations

import os

from celery_docket import Celery
from tests.cutover_apps.ledger import record

URL = os.environ.get("CUT_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("cut", broker=URL, backend=URL)
app.conf.docket_celery_intake = os.environ.get("CUT_INTAKE") == "1"
app.conf.docket_celery_unacked_age = float(os.environ.get("CUT_ORPHAN_AGE", 3600))
app.conf.docket_lease_seconds = 30


@app.task(name="cut.work", bind=True)
def work(self, n):
    record("docket", self.request.id)
    return n


@app.task(name="cut.add", bind=True)
def add(self, a, b):
    record("docket", self.request.id)
    return a + b


@app.task(name="cut.tsum", bind=True)
def tsum(self, values):
    record("docket", self.request.id)
    return sum(values)
