"""Schedules under concurrency: a perpetual raced by four workers; ETAs longer than a lease."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from celery_docket.engine import Docket
from tests.fault.harness import (
    Cluster,
    CommitWatcher,
    Producer,
    dead_entries,
    pending_count,
    rets_by_token,
    starts_by_id,
    wait_until,
)
from tests.fault.proc_worker import TICK, register_probes

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(90)]


def test_four_workers_race_one_perpetual(
    cluster: Cluster, docket: Docket, watcher: CommitWatcher
) -> None:
    """Four workers (each re-asserting the perpetual every 0.3 s) race one perpetual that
    runs every 0.7 s for ~10 s: exactly one run per tick, never two at once, none skipped."""
    every, tick_ms = 0.7, 100
    register_probes(docket, perpetual_every=every)
    opts = dict(
        pool="threads",
        concurrency=2,
        lease=1,
        perpetual_every=every,
        perpetual_refresh=0.3,
        tick_ms=tick_ms,
    )
    for i in range(4):
        cluster.spawn(f"w{i}", wait_ready=False, **opts)
    for w in cluster.workers:
        cluster.wait_ready(w)
    time.sleep(10)
    codes = cluster.stop_all()
    assert set(codes.values()) == {0}, codes
    records = cluster.records()
    runs = starts_by_id(records)[TICK]
    rets = rets_by_token(records)
    assert len(runs) >= 8, runs
    assert len({r["pid"] for r in runs}) >= 2, "only one worker ever ran it"
    gaps = []
    for prev, nxt in zip(runs, runs[1:]):
        prev_end = rets[prev["tok"]]["t"]
        gap = nxt["t"] - prev_end
        gaps.append(round(gap, 3))
        assert nxt["t"] > prev_end, f"overlap: {prev} and {nxt}"
        # the next run is due `every` after the previous run ended: not earlier (a double
        # run), not much later (a skipped tick)
        assert every - 0.05 <= gap <= every + 0.5, (gap, prev, nxt)
    assert all(r["dc"] == 1 for r in runs), "a tick was redelivered"
    # every run committed exactly once (each run publishes its result once)
    assert watcher.count(TICK) == len([r for r in runs if r["tok"] in rets])
    assert dead_entries(docket) == []
    print(f"\nperpetual: {len(runs)} runs, gaps {min(gaps)}..{max(gaps)} s")


def test_eta_longer_than_the_lease_runs_once(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """Lease 1 s; tasks parked for 3 s (plain and keyed), and tasks running 2.5 s: each
    runs exactly once, and no parked task starts before it is due."""
    for i in range(2):
        cluster.spawn(f"e{i}", pool="threads", concurrency=4, lease=1.0)
    parked = {}
    for j in range(30):
        e = producer.add(50, when=timedelta(seconds=3), key=f"eta-{j}" if j % 2 else None)
        assert e.state == "parked"
        parked[e.id] = time.time() + 3.0
    long_running = [producer.add(2500).id for _ in range(3)]
    ids = list(producer.ids)
    wait_until(lambda: watcher.all_committed(ids), 15, 0.1, "all committed")
    time.sleep(1.5)  # a second (wrong) run would show up by now
    codes = cluster.stop_all()
    assert set(codes.values()) == {0}
    starts = starts_by_id(cluster.records())
    assert {i: len(starts[i]) for i in ids} == {i: 1 for i in ids}
    assert all(watcher.count(i) == 1 for i in ids)
    early = {
        i: parked[i] - starts[i][0]["t"] for i in parked if starts[i][0]["t"] < parked[i] - 0.05
    }
    assert early == {}, f"started before due: {early}"
    assert all(starts[i][0]["dc"] == 1 for i in ids)
    assert all(len(starts[i]) == 1 for i in long_running)
    assert pending_count(docket) == 0 and docket.redis.zcard(docket.keys("default").due) == 0
    assert dead_entries(docket) == []
