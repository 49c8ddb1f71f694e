"""A Celery-API app for facade fault tests; each run appends a line to a ledger file.

Configured from the environment: CD_FAULT_BROKER, CD_FAULT_PREFIX, CD_FAULT_LEDGER,
CD_FAULT_TICK (seconds between beat ticks; 0 disables beat).
"""

from __future__ import annotations

import os
import time

from celery_docket import Celery

app = Celery("faultapp", broker=os.environ["CD_FAULT_BROKER"])
app.conf.docket_key_prefix = os.environ["CD_FAULT_PREFIX"]
app.conf.docket_lease_seconds = 2
app.conf.docket_max_deliveries = 50
LEDGER = os.environ["CD_FAULT_LEDGER"]
TICK = float(os.environ.get("CD_FAULT_TICK", "0"))
if TICK:
    app.conf.beat_schedule = {"tick": {"task": "fault.tick", "schedule": TICK}}


def _log(*fields: object) -> None:
    line = " ".join(str(f) for f in fields) + "\n"
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.task(name="fault.tick")
def tick() -> None:
    _log("TICK", os.getpid(), time.time())


@app.task(name="fault.part", bind=True)
def part(self, i: int, ms: int) -> int:
    _log("PART", i, os.getpid(), time.time())
    time.sleep(ms / 1000)
    return i


@app.task(name="fault.body")
def body(values: list[int]) -> int:
    _log("BODY", len(values), sum(values), os.getpid(), time.time())
    return sum(values)
