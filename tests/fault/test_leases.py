"""Leases of what a worker holds but has not started, tasks that raise BaseException, and
results that must not wait behind a slow task (solo pool)."""

from __future__ import annotations

import signal
import time

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

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(90)]


def _overlaps(
    runs: list[dict], rets: dict[str, dict], kills: dict[int, float]
) -> list[tuple[dict, dict]]:
    """Pairs of runs of one id whose START..RET intervals overlap in time (a run that never
    returned ends when its process was killed, or never)."""
    spans = [
        (r, r["t"], rets.get(r["tok"], {}).get("t", kills.get(r["pid"], float("inf"))))
        for r in runs
    ]
    return [
        (a, b)
        for i, (a, a0, a1) in enumerate(spans)
        for (b, b0, b1) in spans[i + 1 :]
        if a0 < b1 and b0 < a1
    ]


def test_reclaimed_entries_waiting_for_a_slot_keep_their_lease(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """A dead consumer holds 2 entries; a live ``-c 2`` worker (lease 2 s) busy with 2 fresh
    5 s tasks reclaims them: while they wait for a slot their lease must be renewed, so each
    runs exactly once on the live worker and nothing runs twice at the same time."""
    lease = 2.0
    dead = cluster.spawn("rd", pool="threads", concurrency=2, lease=lease)
    held = [producer.add(5000), producer.add(5000)]
    wait_until(
        lambda: all(starts_by_id(cluster.records()).get(e.id) for e in held), 10, what="STARTs"
    )
    killed_at = dead.kill9()
    fresh = [producer.add(5000), producer.add(5000)]
    live = cluster.spawn("rl", pool="threads", concurrency=2, lease=lease)
    ids = [e.id for e in held + fresh]
    wait_until(lambda: watcher.all_committed(ids), 40, 0.2, "all four committed")
    time.sleep(lease)  # a (wrong) extra run would START within a lease
    records = cluster.records()
    starts = starts_by_id(records)
    rets = rets_by_token(records)
    on_live = {i: [s for s in starts[i] if s["pid"] == live.pid] for i in ids}
    assert {i: len(r) for i, r in on_live.items()} == {i: 1 for i in ids}, on_live
    assert all(_overlaps(starts[i], rets, {dead.pid: killed_at}) == [] for i in ids), starts
    assert all(watcher.count(i) == 1 for i in ids)
    assert dead_entries(docket) == []
    assert pending_count(docket) == 0
    assert cluster.stop_all()[live.pid] == 0


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_task_raising_system_exit_does_not_wedge_the_worker(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher, pool: str
) -> None:
    """A task that raises SystemExit gets an outcome (dead-lettered with a reason), its slot
    is freed, the next tasks run on the same process, and SIGTERM still stops it."""
    w = cluster.spawn("se", pool=pool, concurrency=1, lease=1.0)
    bad = producer.add(0, exit_code=3)
    after = [producer.add(10) for _ in range(3)]
    wait_until(lambda: watcher.all_committed(e.id for e in after), 10, what="later tasks")
    assert all(docket.result(e.id, timeout=1)["pid"] == w.pid for e in after)
    wait_until(lambda: dead_entries(docket), 5, what="a dead letter")
    (entry,) = dead_entries(docket)
    assert entry["i"] == bad.id and "SystemExit" in entry["r"], entry
    assert len(starts_by_id(cluster.records())[bad.id]) == 1
    assert pending_count(docket) == 0
    w.signal(signal.SIGTERM)
    assert w.proc.wait(10) == 0


def test_solo_commits_a_finished_result_while_the_next_task_runs(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """Solo pool, one batch of a 1 ms task then a 4 s task: the first result is committed
    while the second runs, not after it."""
    quick = producer.add(1)
    slow = producer.add(4000)
    w = cluster.spawn("so", pool="solo", concurrency=1, lease=2.0)
    wait_until(lambda: watcher.count(slow.id), 15, what="slow commit")
    records = cluster.records()
    starts = starts_by_id(records)
    assert starts[quick.id][0]["mid"] < starts[slow.id][0]["mid"]
    ret = next(r for r in records if r[0] == "RET" and r[1] == quick.id)
    committed_at = next(float(r[3]) for r in records if r[0] == "END" and r[1] == quick.id)
    assert committed_at - float(ret[3]) < 1.0, "the quick result waited behind the slow task"
    assert committed_at < starts[slow.id][0]["t"] + 1.0
    assert cluster.stop_all()[w.pid] == 0


def test_a_vanished_consumers_large_pel_is_recovered_quickly(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """A consumer read 300 entries and vanished (no heartbeat, never acked). A live
    ``-c 4`` worker (lease 2 s) takes them over as fast as it frees slots, walking the
    whole PEL: all commit within a few seconds of their lease expiring, each runs once."""
    lease = 2.0
    for _ in range(300):
        producer.add(5)
    docket.ensure_group("default")
    stream = docket.keys("default").stream
    read = docket.redis.xreadgroup("workers", "ghost:1-000000", {stream: ">"}, count=1000)
    assert len(read[0][1]) == 300
    read_at = time.monotonic()
    cluster.spawn("vp", pool="threads", concurrency=4, lease=lease)
    ids = list(producer.ids)
    wait_until(lambda: watcher.all_committed(ids), 60, 0.1, "all committed")
    took = time.monotonic() - read_at - lease
    starts = starts_by_id(cluster.records())
    assert all(len(starts[i]) == 1 for i in ids)
    assert pending_count(docket) == 0
    print(f"\nvanished PEL: 300 entries recovered {took:.1f}s after their lease expired")
    assert took < 4.0, f"recovery took {took:.1f}s after the lease expired"


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_threads_or_solo_task_holding_the_gil_under_two_thirds_of_the_lease_keeps_it(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher, pool: str
) -> None:
    """The guarantee for threads and solo (the keeper is a thread of the same process): a
    task that holds the GIL for less than 2/3 of the lease (here 1 s of a 3 s lease) keeps
    its lease; a rival worker does not run it again."""
    lease = 3.0
    w = cluster.spawn("gh", pool=pool, concurrency=1, lease=lease)
    e = producer.add(1100, gil_s=1)  # renewed once (after lease/3), then the GIL is held
    wait_until(lambda: starts_by_id(cluster.records()).get(e.id), 10, what="START")
    rival = cluster.spawn("gr", pool="threads", concurrency=2, lease=lease)
    wait_until(lambda: watcher.count(e.id), 15, 0.1, what="commit")
    time.sleep(lease)
    runs = starts_by_id(cluster.records())[e.id]
    assert [r["pid"] for r in runs] == [w.pid], runs
    assert rival.alive()


def test_adopted_entries_waiting_for_a_slot_keep_their_lease(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """A ``-c 2`` worker holding two 4 s tasks is SIGKILLed and restarted at once under the
    same name with ``-c 1`` (lease 2 s): it adopts both; the one waiting for the slot keeps
    its lease, so each runs exactly once more, never twice at the same time."""
    lease = 2.0
    first = cluster.spawn("aw", pool="threads", concurrency=2, lease=lease)
    held = [producer.add(4000), producer.add(4000)]
    wait_until(
        lambda: all(starts_by_id(cluster.records()).get(e.id) for e in held), 10, what="STARTs"
    )
    killed_at = first.kill9()
    again = cluster.spawn("aw", pool="threads", concurrency=1, lease=lease)
    ids = [e.id for e in held]
    wait_until(lambda: watcher.all_committed(ids), 30, 0.2, "both committed")
    time.sleep(lease)
    records = cluster.records()
    starts = starts_by_id(records)
    rets = rets_by_token(records)
    assert {i: [s["pid"] for s in starts[i]] for i in ids} == {
        i: [first.pid, again.pid] for i in ids
    }, starts
    assert all(_overlaps(starts[i], rets, {first.pid: killed_at}) == [] for i in ids)
    assert all(watcher.count(i) == 1 for i in ids)
    assert cluster.stop_all()[again.pid] == 0
