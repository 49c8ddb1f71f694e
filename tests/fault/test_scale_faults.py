"""FAULTS rows at scale: a huge abandoned pending list, and a huge number of tasks due at once.

Both must be handled in bounded steps: Redis keeps answering other clients quickly (PING
latency sampled from a separate connection) while the worker recovers or moves the work, and
everything runs once. Sizes are kept CI-sized by default (``CD_FAULT_SCALE`` multiplies them;
the FAULTS rows name 100,000 pending and 200,000 due, which ``CD_FAULT_SCALE=4`` reaches).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
import redis

from celery_docket.engine import Docket
from celery_docket.engine.docket import Call
from celery_docket.engine.keys import GROUP
from celery_docket.engine.native import encode_call
from tests.fault.harness import Cluster, dead_entries, pending_count, wait_until
from tests.fault.proc_worker import WORK

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(240)]

SCALE = float(os.environ.get("CD_FAULT_SCALE", "1"))
PENDING = int(25_000 * SCALE)
DUE = int(50_000 * SCALE)
PING_P99_MS = 50.0


class PingSampler:
    """PINGs Redis every 10 ms from its own connection; latencies in ms."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            t = time.perf_counter()
            self.client.ping()
            self.samples.append((time.perf_counter() - t) * 1000)

    def __enter__(self) -> PingSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()

    def p99(self) -> float:
        return statistics.quantiles(self.samples, n=100)[98]


def _fill(docket: Docket, n: int, when: datetime | None = None) -> list[str]:
    body = encode_call((0,), {}, docket.content_type)
    calls = [Call(WORK, body, execution_id=uuid.uuid4().hex, when=when) for _ in range(n)]
    return [e.id for e in docket.enqueue_many(calls)]


def _finished(docket: Docket, ids: list[str]) -> int:
    got = 0
    for start in range(0, len(ids), 2000):
        got += sum(r is not None for r in docket.results.get_many(ids[start : start + 2000]))
    return got


def test_a_huge_abandoned_pending_list_is_redelivered_in_bounded_steps(
    cluster: Cluster, docket: Docket, redis_server_url: str
) -> None:
    ids = _fill(docket, PENDING)
    stream = docket.keys("default").stream
    docket.ensure_group("default")
    # a consumer that read everything and vanished without a heartbeat or an ack
    docket.redis.xreadgroup(GROUP, "ghost@gone-host", {stream: ">"}, count=PENDING)
    assert pending_count(docket) == PENDING
    with PingSampler(redis_server_url) as pings:
        started = time.monotonic()
        cluster.spawn("rescuer", pool="threads", concurrency=8, lease=2)
        wait_until(lambda: _finished(docket, ids) == len(ids), 180, 0.5, "all redelivered")
        took = time.monotonic() - started
    print(
        f"\n{PENDING} abandoned pending entries redelivered and run in {took:.1f}s "
        f"({PENDING / took:.0f}/s); PING p99 {pings.p99():.1f} ms over {len(pings.samples)}"
    )
    wait_until(lambda: pending_count(docket) == 0, 20, 0.2, "nothing left pending")
    assert dead_entries(docket) == []
    assert pings.p99() < PING_P99_MS


def test_a_huge_number_of_tasks_due_at_once_moves_in_bounded_steps(
    cluster: Cluster, docket: Docket, redis_server_url: str
) -> None:
    t = docket.redis.time()
    due_at = datetime.fromtimestamp(t[0] + 5 + 10 * SCALE, tz=timezone.utc)
    ids = _fill(docket, DUE, when=due_at)
    left = (due_at - datetime.now(timezone.utc)).total_seconds()
    assert left > 1, f"filling took too long to test a simultaneous due time ({left:.1f}s left)"
    assert docket.redis.zcard(docket.keys("default").due) == DUE
    cluster.spawn("mover", pool="threads", concurrency=8, lease=5)
    with PingSampler(redis_server_url) as pings:
        time.sleep(max(0.0, left))
        wait_until(lambda: _finished(docket, ids) == len(ids), 180, 0.5, "all ran")
        took = (datetime.now(timezone.utc) - due_at).total_seconds()
    print(
        f"\n{DUE} tasks due at one instant moved and run in {took:.1f}s "
        f"({DUE / took:.0f}/s); PING p99 {pings.p99():.1f} ms over {len(pings.samples)}"
    )
    assert docket.redis.zcard(docket.keys("default").due) == 0
    assert dead_entries(docket) == []
    assert pings.p99() < PING_P99_MS
