"""A Celery-API app with a rate-limited task, run by tests/test_rate_limits.py as workers."""

from __future__ import annotations

import os
import socket
import time

from celery_docket import Celery

app = Celery("rl", broker=os.environ["CD_RL_BROKER"], backend=os.environ["CD_RL_BROKER"])
app.conf.docket_key_prefix = os.environ["CD_RL_PREFIX"]


@app.task(name="rl.stamp", rate_limit="5/s")
def stamp(i: int) -> tuple[str, float]:
    return f"{socket.gethostname()}-{os.getpid()}", time.time()


@app.task(name="rl.free")
def free(i: int) -> int:
    return i
