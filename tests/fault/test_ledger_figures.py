"""The ledger figures of issue 11: kill -9 of prefork pools (the whole group, and the
supervisor alone) under 5,000 short and 30 long tasks, and SIGSTOP of a worker past its
lease under load. Lost = 0; every duplicate run is explained by a kill or a freeze (it ran
on a killed or frozen process before the fault); processes never faulted run nothing twice.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from celery_docket.engine import Docket
from tests.fault.harness import (
    Cluster,
    CommitWatcher,
    Producer,
    committed_results,
    dead_entries,
    pending_count,
    starts_by_id,
    wait_until,
)
from tests.fault.test_prefork_faults import Pools

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(180)]

SHORT, LONG = 5000, 30


@pytest.fixture
def pools(cluster: Cluster) -> Iterator[Pools]:
    p = Pools(cluster)
    try:
        yield p
    finally:
        p.cleanup()


def _figures(
    docket: Docket, cluster: Cluster, ids: list[str], faults: dict[int, float]
) -> tuple[int, int, list[tuple[str, dict]]]:
    """(lost, duplicates, unexplained duplicates) over ``ids``; ``faults``: pid -> when."""
    results = committed_results(docket, ids)
    lost = sum(r is None for r in results.values())
    starts = starts_by_id(cluster.records())
    dups = 0
    unexplained = []
    for i in ids:
        committed = (results[i] or {}).get("ok", {}).get("tok")
        for s in starts[i]:
            if s["tok"] == committed:
                continue
            dups += 1
            if not (s["pid"] in faults and s["t"] <= faults[s["pid"]]):
                unexplained.append((i, s))
    return lost, dups, unexplained


def test_prefork_kills_of_the_group_and_of_the_supervisor(
    pools: Pools, cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    lease = 2.0
    a = pools.spawn("la", processes=2, lease=lease)
    b = pools.spawn("lb", processes=2, lease=lease)
    a_kids, b_kids = pools.children("la", a.pid), pools.children("lb", b.pid)
    longs = [producer.add(3000).id for _ in range(LONG)]
    shorts = [producer.add(1 + i % 5).id for i in range(SHORT)]
    faults: dict[int, float] = {}
    time.sleep(1.5)
    t = time.time()
    os.killpg(a.pid, signal.SIGKILL)  # the whole group: supervisor and children
    a.wait(10)
    faults.update({pid: t for pid in [a.pid, *a_kids]})
    a2 = pools.spawn("la", processes=2, lease=lease)
    time.sleep(2.0)
    t = time.time()
    b.kill()  # the supervisor alone: its children must follow it
    b.wait(10)
    faults.update({pid: t + 5.0 for pid in [b.pid, *b_kids]})  # they exit within 5 s
    pools.spawn("lb", processes=2, lease=lease)
    ids = longs + shorts
    wait_until(lambda: watcher.all_committed(ids), 120, 0.25, "every task committed")
    wait_until(lambda: pending_count(docket) == 0, 15, what="nothing pending")
    lost, dups, unexplained = _figures(docket, cluster, ids, faults)
    healthy = set(pools.children("la", a2.pid))
    on_healthy = [u for u in unexplained if u[1]["pid"] in healthy]
    print(
        f"\nprefork kills under {SHORT} short + {LONG} long tasks: lost {lost}, "
        f"duplicates {dups} (explained by a kill: {dups - len(unexplained)}), "
        f"on healthy processes {len(on_healthy)}"
    )
    assert lost == 0
    assert unexplained == [], unexplained[:5]
    assert all(watcher.count(i) == 1 for i in ids)
    assert dead_entries(docket) == []


def test_sigstop_past_the_lease_under_load(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    lease = 1.5
    frozen = cluster.spawn("sa", pool="threads", concurrency=4, lease=lease)
    healthy = cluster.spawn("sb", pool="threads", concurrency=4, lease=lease)
    ids = [producer.add(20 + (i % 10) * 20).id for i in range(1500)]
    time.sleep(1.0)
    frozen.signal(signal.SIGSTOP)
    stopped_at = time.time()
    time.sleep(2 * lease + 0.5)
    frozen.signal(signal.SIGCONT)
    wait_until(lambda: watcher.all_committed(ids), 90, 0.25, "every task committed")
    wait_until(lambda: pending_count(docket) == 0, 15, what="nothing pending")
    lost, dups, unexplained = _figures(docket, cluster, ids, {frozen.pid: stopped_at})
    print(
        f"\nSIGSTOP {2 * lease + 0.5:.1f}s past a {lease}s lease under 1500 tasks: lost {lost}, "
        f"duplicates {dups} (explained by the freeze: {dups - len(unexplained)})"
    )
    assert lost == 0
    assert unexplained == [], unexplained[:5]
    assert all(watcher.count(i) == 1 for i in ids)
    assert frozen.alive() and healthy.alive()
    codes = cluster.stop_all()
    assert set(codes.values()) == {0}, codes
