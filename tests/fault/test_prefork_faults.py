"""The prefork supervisor killed: its children must not outlive it, and a restart under the
same name takes the dead children's entries over at once (zombies are not alive)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from celery_docket.engine import Docket
from tests.fault.harness import Cluster, CommitWatcher, Pools, Producer, starts_by_id, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(90)]


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_sigkill_of_the_supervisor_takes_its_children_down(
    pools: Pools, cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """SIGKILL the supervisor alone while a child runs a long task: every child exits within
    a few seconds, and nothing consumes afterwards."""
    sup = pools.spawn("pk", processes=2, lease=2.0)
    children = pools.children("pk", sup.pid)
    e = producer.add(20_000)
    wait_until(lambda: starts_by_id(cluster.records()).get(e.id), 10, what="START")
    sup.kill()
    sup.wait(10)
    wait_until(lambda: all(gone(c) for c in children), 5, what=f"children {children} exit")
    later = producer.add(0)
    time.sleep(1.0)
    assert watcher.count(later.id) == 0, "a child of the dead supervisor still consumes"


def test_same_name_restart_after_killing_the_whole_group_adopts_at_once(
    pools: Pools, cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """kill -9 of the whole process group, restart at once under the same name: the dead
    child's entry runs again within 2 s, not after the 6 s lease (its zombie is not alive)."""
    sup = pools.spawn("pz", processes=1, lease=6.0)
    e = producer.add(1500)
    wait_until(lambda: starts_by_id(cluster.records()).get(e.id), 10, what="START")
    killed_at = time.time()
    os.killpg(sup.pid, signal.SIGKILL)
    sup.wait(10)
    pools.spawn("pz", processes=1, lease=6.0)
    wait_until(lambda: watcher.count(e.id), 15, 0.1, what="commit")
    runs = starts_by_id(cluster.records())[e.id]
    assert len(runs) == 2 and runs[1]["dc"] == 2, runs
    delay = runs[1]["t"] - killed_at
    assert delay < 2.0, f"re-run {delay:.1f}s after the kill: the dead child counted as alive"
    print(f"\nsame-name prefork restart: re-run {delay:.2f}s after kill -9 of the group")


def test_prefork_task_holding_the_gil_past_the_lease_keeps_it(
    pools: Pools, cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """A prefork child runs a task that holds the GIL for 3x the lease (its own keeper
    cannot run); the supervisor renews for it, so a rival worker never takes it over."""
    lease = 1.0
    pools.spawn("pg", processes=1, lease=lease)
    e = producer.add(0, gil_s=3)
    wait_until(lambda: starts_by_id(cluster.records()).get(e.id), 10, what="START")
    rival = cluster.spawn("rv", pool="threads", concurrency=2, lease=lease)
    wait_until(lambda: watcher.count(e.id), 15, 0.1, what="commit")
    time.sleep(lease)
    runs = starts_by_id(cluster.records())[e.id]
    assert len(runs) == 1 and runs[0]["pid"] != rival.pid, runs
    assert watcher.count(e.id) == 1


def test_hard_time_limit_on_the_next_task_does_not_rerun_a_finished_one(
    pools: Pools, cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """One child reads a 1 ms task and a 5 s task in one batch; the hard time limit (1 s)
    kills it during the second. The first was committed as soon as it finished: it runs
    once, and its result is there long before the kill."""
    quick = producer.add(1)
    slow = producer.add(5000)
    pools.spawn("pt", processes=1, lease=2.0, time_limit=1.0)
    wait_until(lambda: watcher.count(slow.id), 15, 0.1, what="slow outcome")
    time.sleep(0.5)
    records = cluster.records()
    starts = starts_by_id(records)
    assert len(starts[quick.id]) == 1, starts[quick.id]
    assert watcher.count(quick.id) == 1
    quick_end = next(float(r[3]) for r in records if r[0] == "END" and r[1] == quick.id)
    assert quick_end < starts[slow.id][0]["t"] + 0.9, "the quick result waited for the kill"
