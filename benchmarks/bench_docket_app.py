"""Benchmark app for ``benchmarks/compare.py``.

``bench_celery_app.py`` (real Celery) and ``bench_docket_app.py`` (celery_docket) differ only
in the import line marked ``SYSTEM``; compare.py checks that before it runs.
Configuration comes from the environment:

``BENCH_BROKER_URL``   broker (and result backend) URL, e.g. ``redis://127.0.0.1:6379/1``
``BENCH_RESULTS_URL``  result backend URL (default: the broker URL)

Marks the benchmark reads (``bench:*`` keys in the broker's database, outside the queue keys):

``bench:ready``  a worker's main process is ready (``worker_ready``): ``[time, pid]``
``bench:first``  the first task a process ran: ``[time, pid]`` (one per process)
``bench:stamps`` ``stamp``: ``[tag, start time, request.eta]``
``bench:burns``  ``burn``: ``[start time, end time]``
"""

from __future__ import annotations

import json
import os
import time

import redis

# isort: off
from celery_docket import Celery, signals  # SYSTEM
# isort: on

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/1")
RESULTS = os.environ.get("BENCH_RESULTS_URL") or BROKER

app = Celery("bench", broker=BROKER, backend=RESULTS)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=True,
)

_side: dict[int, redis.Redis] = {}
_first_done: set[int] = set()


def side() -> redis.Redis:
    """A connection for the marks, made once per process (prefork children included)."""
    pid = os.getpid()
    conn = _side.get(pid)
    if conn is None:
        conn = _side[pid] = redis.Redis.from_url(BROKER)
    return conn


def _mark_first() -> None:
    pid = os.getpid()
    if pid not in _first_done:
        _first_done.add(pid)
        side().rpush("bench:first", json.dumps([time.time(), pid]))


@signals.worker_ready.connect
def _on_ready(sender: object = None, **_kwargs: object) -> None:
    side().rpush("bench:ready", json.dumps([time.time(), os.getpid()]))


def spin(iterations: int) -> int:
    """Pure-Python work: ``iterations`` rounds of integer arithmetic."""
    acc = 0
    for i in range(iterations):
        acc = (acc * 31 + i) % 1_000_003
    return acc


@app.task(ignore_result=True)
def noop() -> None:
    _mark_first()


@app.task
def echo(value: int) -> int:
    return value


@app.task(bind=True, ignore_result=True)
def stamp(self, tag: int) -> None:
    now = time.time()
    side().rpush("bench:stamps", json.dumps([tag, now, self.request.eta]))


@app.task(ignore_result=True)
def burn(iterations: int) -> None:
    start = time.time()
    _mark_first()
    spin(iterations)
    side().rpush("bench:burns", json.dumps([start, time.time()]))
