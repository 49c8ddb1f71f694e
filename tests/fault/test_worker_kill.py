"""Workers killed (SIGKILL), stopped (SIGTERM) or frozen (SIGSTOP) while they run tasks."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from celery_docket.engine import Docket
from tests.fault.harness import (
    Cluster,
    CommitWatcher,
    Producer,
    committed_results,
    dead_entries,
    enq_ids,
    pending_count,
    rets_by_token,
    starts_by_id,
    wait_until,
)

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(150)]


def _produce(
    producer: Producer, n: int, rate: float, rng: random.Random, stop: threading.Event
) -> None:
    """Add ``n`` tasks of 20-200 ms at about ``rate`` per second (bounded)."""
    for _ in range(n):
        if stop.is_set():
            return
        producer.add(rng.randint(20, 200))
        time.sleep(1.0 / rate)


def _check_exactly_one_commit(
    docket: Docket, cluster: Cluster, watcher: CommitWatcher
) -> tuple[list[str], dict[str, list[dict]], dict[str, dict | None]]:
    records = cluster.records()
    ids = enq_ids(records)
    results = committed_results(docket, ids)
    lost = [i for i in ids if results[i] is None]
    assert lost == [], f"lost {len(lost)} of {len(ids)}: {lost[:5]}"
    failed = [i for i in ids if "ok" not in results[i]]
    assert failed == [], f"tasks failed: {[results[i] for i in failed[:3]]}"
    double = {i: watcher.count(i) for i in ids if watcher.count(i) != 1}
    assert double == {}, f"ids committed other than once: {list(double.items())[:5]}"
    starts = starts_by_id(records)
    for i in ids:
        toks = [s["tok"] for s in starts[i]]
        assert results[i]["ok"]["tok"] in toks, f"{i}: committed run has no START record"
    return ids, starts, results


def test_sigkill_mid_task_loses_nothing(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """Three workers; three times a busy worker is SIGKILLed mid-task and respawned.

    Every added id gets exactly one committed result, and every START that did not commit
    belongs to a worker that was SIGKILLed after it started (a kill window).
    """
    rng = random.Random(20240601)
    opts = dict(pool="threads", concurrency=4, lease=1.5, max_deliveries=10)
    names = ["n0", "n1", "n2"]
    for name in names:
        cluster.spawn(name, **opts)
    stop = threading.Event()
    feeder = threading.Thread(target=_produce, args=(producer, 600, 90.0, rng, stop), daemon=True)
    t0 = time.monotonic()
    feeder.start()
    kills: dict[int, float] = {}
    try:
        for round_ in range(3):
            time.sleep(1.5)
            # the victim: a live worker with a task running right now
            records = cluster.records()
            rets = {r[4] for r in records if r[0] == "RET"}
            running = [int(r[3]) for r in records if r[0] == "START" and r[6] not in rets]
            live = [w for w in cluster.workers if w.alive()]
            busy = [w for w in live if w.pid in running] or live
            victim = busy[round_ % len(busy)]
            kills[victim.pid] = victim.kill9()
            # respawn: same name on even rounds (the adoption path), a fresh name otherwise
            name = victim.name if round_ % 2 == 0 else f"{victim.name}-r{round_}"
            cluster.spawn(name, wait_ready=False, **opts)
        feeder.join(30)
        assert not feeder.is_alive()
        ids = list(producer.ids)
        wait_until(lambda: watcher.all_committed(ids), 60, 0.2, "every id committed")
        # nothing left in flight or queued
        wait_until(lambda: pending_count(docket) == 0, 10, what="empty PEL")
    finally:
        stop.set()
    codes = cluster.stop_all()
    assert all(codes[w.pid] == 0 for w in cluster.workers if w.pid not in kills), codes

    ids, starts, results = _check_exactly_one_commit(docket, cluster, watcher)
    assert len(ids) == 600
    dups = 0
    unexplained = []
    for i in ids:
        committed_tok = results[i]["ok"]["tok"]
        for s in starts[i]:
            if s["tok"] == committed_tok:
                continue
            dups += 1
            if not (s["pid"] in kills and s["t"] <= kills[s["pid"]]):
                unexplained.append((i, s, starts[i]))
    assert unexplained == [], f"duplicate STARTs not explained by a kill: {unexplained[:3]}"
    assert dead_entries(docket) == []
    print(
        f"\nsigkill: {len(ids)} tasks, {len(kills)} kills, {dups} re-runs after a kill, "
        f"{time.monotonic() - t0:.1f}s"
    )


def test_sigterm_under_load_is_graceful(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """Each of three workers (two thread pools, one solo) gets SIGTERM once under load.

    Each exits 0 and is replaced; nothing is lost and nothing runs twice.
    """
    rng = random.Random(7)
    spec = {
        "t0": dict(pool="threads", concurrency=4),
        "t1": dict(pool="threads", concurrency=3),
        "s0": dict(pool="solo", concurrency=1),
    }
    for name, opts in spec.items():
        cluster.spawn(name, lease=2, **opts)
    stop = threading.Event()
    feeder = threading.Thread(target=_produce, args=(producer, 500, 80.0, rng, stop), daemon=True)
    feeder.start()
    terminated = []
    try:
        for name in spec:
            time.sleep(1.2)
            victim = next(w for w in cluster.workers if w.name == name and w.alive())
            victim.signal(signal.SIGTERM)
            code = victim.proc.wait(20)
            terminated.append((victim, code))
            cluster.spawn(name, wait_ready=False, lease=2, **spec[name])
        feeder.join(30)
        assert not feeder.is_alive()
        ids = list(producer.ids)
        wait_until(lambda: watcher.all_committed(ids), 60, 0.2, "every id committed")
    finally:
        stop.set()
    codes = cluster.stop_all()
    assert [c for _w, c in terminated] == [0, 0, 0], [w.log()[-2000:] for w, _c in terminated]
    assert all(c == 0 for c in codes.values()), codes
    assert all(
        any(r[0] == "EXIT" and int(r[1]) == w.pid for r in cluster.records())
        for w, _c in terminated
    )
    ids, starts, _results = _check_exactly_one_commit(docket, cluster, watcher)
    assert len(ids) == 500
    dup = {i: starts[i] for i in ids if len(starts[i]) != 1}
    assert dup == {}, f"{len(dup)} ids started more than once: {list(dup.items())[:3]}"
    assert pending_count(docket) == 0
    assert dead_entries(docket) == []


@pytest.mark.parametrize("stale_finishes", ["first", "last"])
def test_frozen_worker_is_taken_over_and_its_commit_rejected(
    cluster: Cluster,
    docket: Docket,
    producer: Producer,
    watcher: CommitWatcher,
    stale_finishes: str,
) -> None:
    """SIGSTOP the runner of a long task for 2x the lease, then SIGCONT it.

    Another worker takes the task over; the stale runner finishes too but its commit is
    fenced off: exactly one committed outcome, from the new owner, never overwritten.
    ``first``: the stale runner finishes while the new owner still runs it;
    ``last``: the new owner committed before the stale runner finishes.
    """
    lease = 1.0
    a = cluster.spawn("fa", pool="threads", concurrency=2, lease=lease)
    b = cluster.spawn("fb", pool="threads", concurrency=2, lease=lease)
    first_ms, again_ms = (2500, 4000) if stale_finishes == "first" else (3000, 1000)
    e = producer.add(first_ms, redelivered_ms=again_ms)
    started = wait_until(lambda: starts_by_id(cluster.records()).get(e.id), 10, what="START")
    runner = next(w for w in (a, b) if w.pid == started[0]["pid"])
    other = b if runner is a else a
    time.sleep(0.2)
    runner.signal(signal.SIGSTOP)
    frozen_at = time.time()
    time.sleep(2 * lease)
    runner.signal(signal.SIGCONT)
    # both runs return (the stale one after it resumes)
    wait_until(
        lambda: len([r for r in cluster.records() if r[0] == "RET" and r[1] == e.id]) == 2,
        15,
        what="both runs returned",
    )
    wait_until(lambda: watcher.count(e.id) >= 1, 10, what="a commit")
    time.sleep(1.0)  # give a (wrong) second commit time to land
    records = cluster.records()
    runs = starts_by_id(records)[e.id]
    rets = rets_by_token(records)
    assert [s["pid"] for s in runs] == [runner.pid, other.pid]
    assert runs[1]["t"] >= frozen_at + lease, "taken over before the lease expired"
    assert runs[1]["dc"] == 2
    order = rets[runs[0]["tok"]]["t"] < rets[runs[1]["tok"]]["t"]
    assert order == (stale_finishes == "first")
    assert watcher.count(e.id) == 1, watcher.commits[e.id]
    final = docket.result(e.id, timeout=1)
    assert final["pid"] == other.pid and final["tok"] == runs[1]["tok"]
    assert pending_count(docket) == 0
    assert dead_entries(docket) == []
    assert "not committed" in runner.log() or "was lost" in runner.log()
    assert runner.alive() and other.alive()
    codes = cluster.stop_all()
    assert set(codes.values()) == {0}


def test_sigterm_waits_for_a_task_longer_than_the_lease(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """SIGTERM a worker while it runs a task longer than its lease: the graceful stop lets it
    finish and commit; another live worker must not take it over meanwhile (dup = 0)."""
    lease = 1.0
    a = cluster.spawn("ga", pool="threads", concurrency=2, lease=lease)
    e = producer.add(3000)
    wait_until(lambda: starts_by_id(cluster.records()).get(e.id), 10, what="START")
    b = cluster.spawn("gb", pool="threads", concurrency=2, lease=lease)
    a.signal(signal.SIGTERM)
    assert a.proc.wait(20) == 0
    wait_until(lambda: watcher.count(e.id) >= 1, 10, what="a commit")
    time.sleep(0.5)
    runs = starts_by_id(cluster.records())[e.id]
    assert [s["pid"] for s in runs] == [a.pid], runs
    assert watcher.count(e.id) == 1
    assert docket.result(e.id, timeout=1)["pid"] == a.pid
    assert b.alive()


def test_same_name_respawn_adopts_orphans_at_once(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """SIGKILL a worker mid-task and restart it at once under the same name (as a supervisor
    does): the new incarnation adopts the dead one's pending entry at once, well before the
    lease (6 s) expires."""
    lease = 6.0
    victim = cluster.spawn("ad", pool="threads", concurrency=2, lease=lease)
    e = producer.add(1000)
    wait_until(lambda: starts_by_id(cluster.records()).get(e.id), 10, what="START")
    killed_at = victim.kill9()
    again = cluster.spawn("ad", pool="threads", concurrency=2, lease=lease)
    wait_until(lambda: watcher.count(e.id), lease + 8, 0.1, what="commit")
    runs = starts_by_id(cluster.records())[e.id]
    assert [r["pid"] for r in runs] == [victim.pid, again.pid]
    assert runs[1]["dc"] == 2
    delay = runs[1]["t"] - killed_at
    assert delay < 3.0, (
        f"orphan re-run {delay:.1f}s after the kill (lease {lease}s): not adopted at once; "
        f"log: {again.log()}"
    )
    assert cluster.stop_all()[again.pid] == 0
