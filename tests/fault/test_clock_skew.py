"""FAULTS row 13: a worker whose wall clock is 120 s ahead of (or behind) everyone else's.

Due times are decided by Redis ``TIME``, never by a worker's own clock: a worker whose clock
runs ahead must not start parked work early, and one whose clock runs behind must not start
it late. The skew comes from libfaketime (Debian's ``faketime``), preloaded into the worker
only, with its monotonic clock left alone so timeouts and leases behave.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from celery_docket.engine import Docket
from tests.fault.harness import Cluster, Producer, committed_results, starts_by_id, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(90)]

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SKEW = 120.0
EARLY_BOUND = 0.25
"""FAULTS row 13: no task starts more than 250 ms before its due time by Redis time."""
LATE_BOUND = 2.0


@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="libfaketime not installed (apt faketime)")
@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["ahead", "behind"])
def test_a_skewed_worker_runs_parked_work_neither_early_nor_late(
    skew: float, cluster: Cluster, docket: Docket, producer: Producer
) -> None:
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": f"{skew:+.0f}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    worker = cluster.spawn("skewed", pool="threads", concurrency=4, lease=3, env=env)
    ready = [r for r in cluster.records() if r[0] == "READY" and int(r[1]) == worker.pid]
    # the worker's clock really is skewed: its READY line carries its own time.time()
    assert abs(float(ready[0][2]) - time.time() - skew) < 5, (ready, time.time())

    redis_now = docket.redis.time()
    base = datetime.fromtimestamp(redis_now[0] + redis_now[1] / 1e6, tz=timezone.utc)
    due: dict[str, float] = {}
    for i in range(20):
        when = base + timedelta(seconds=2 + i * 0.25)
        due[producer.add(5, when=when).id] = when.timestamp()
    ids = list(due)
    wait_until(lambda: all(committed_results(docket, ids).values()), 30, 0.1, "parked ran")
    starts = starts_by_id(cluster.records())
    # START lines carry the worker's skewed clock: take the skew back out
    lateness = {i: starts[i][0]["t"] - skew - due[i] for i in ids}
    early = {i: round(v, 3) for i, v in lateness.items() if v < -EARLY_BOUND}
    late = {i: round(v, 3) for i, v in lateness.items() if v > LATE_BOUND}
    print(
        f"\nclock {skew:+.0f}s: start minus due time, min {min(lateness.values()):+.3f}s, "
        f"max {max(lateness.values()):+.3f}s"
    )
    assert early == {}, f"started early by Redis time: {early}"
    assert late == {}, f"started late by Redis time: {late}"
    assert all(len(starts[i]) == 1 for i in ids)
