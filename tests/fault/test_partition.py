"""FAULTS row 10: a worker cut off from Redis while Redis and the other workers are fine.

The cut is a TCP proxy between that worker and Redis that stops forwarding (a dropped link)
for longer than the lease, then heals; and one that resets every connection. The other
worker takes over only after the lease expired, the cut-off worker's late commit is fenced
off, and after the heal the same process goes on working: exactly one committed outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlparse

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
from tests.fault.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(120)]


@pytest.fixture
def proxy(redis_server_url: str) -> Iterator[TcpProxy]:
    u = urlparse(redis_server_url)
    p = TcpProxy(u.hostname or "127.0.0.1", u.port or 6379)
    try:
        yield p
    finally:
        p.close()


def _through(proxy: TcpProxy, url: str) -> str:
    return proxy.url(int(urlparse(url).path.strip("/") or 0))


def test_partitioned_worker_is_taken_over_and_its_late_commit_fenced(
    proxy: TcpProxy,
    redis_server_url: str,
    prefix: str,
    ledger_dir,  # a fixture path
    docket: Docket,
    producer: Producer,
    watcher: CommitWatcher,
) -> None:
    lease = 2.0
    cut = Cluster(_through(proxy, redis_server_url), prefix, ledger_dir)
    whole = Cluster(redis_server_url, prefix, ledger_dir)
    try:
        a = cut.spawn("cut", pool="threads", concurrency=2, lease=lease)
        e = producer.add(3000, redelivered_ms=500)
        started = wait_until(lambda: starts_by_id(cut.records()).get(e.id), 10, what="START")
        assert started[0]["pid"] == a.pid
        b = whole.spawn("whole", pool="threads", concurrency=2, lease=lease)
        proxy.stall()
        stalled_at = time.time()
        # the other worker takes the task over once the lease has expired, and commits
        wait_until(lambda: watcher.count(e.id) >= 1, 20, what="the take-over's commit")
        time.sleep(4.0)  # the cut-off run returns meanwhile; its commit cannot get through
        proxy.heal()
        healed_at = time.time()
        time.sleep(3.0)  # let a (wrong) late commit land
        runs = starts_by_id(cut.records())[e.id]
        assert [r["pid"] for r in runs] == [a.pid, b.pid]
        assert runs[1]["t"] >= stalled_at + lease - 0.5, "taken over before the lease expired"
        assert watcher.count(e.id) == 1, watcher.commits[e.id]
        assert docket.result(e.id, timeout=1)["pid"] == b.pid

        # after the heal, the cut-off worker serves again, and a reset is survived too
        more = [producer.add(20).id for _ in range(20)]
        wait_until(lambda: all(committed_results(docket, more).values()), 20, what="more ran")
        proxy.reset()
        after = [producer.add(20).id for _ in range(40)]
        wait_until(lambda: all(committed_results(docket, after).values()), 30, what="after")
        pids = {r["ok"]["pid"] for r in committed_results(docket, more + after).values() if r}
        assert a.alive() and b.alive()
        print(
            f"\npartition: taken over {runs[1]['t'] - stalled_at:.1f}s after the cut "
            f"(lease {lease}s), one commit; after the heal ({time.time() - healed_at:.1f}s) "
            f"and a reset, tasks ran on {len(pids)} workers"
        )
        assert a.pid in pids, "the healed worker never served again"
        assert all(watcher.count(i) == 1 for i in more + after)
        assert pending_count(docket) == 0
        assert dead_entries(docket) == []
        codes = {**cut.stop_all(), **whole.stop_all()}
        assert set(codes.values()) == {0}, codes
    finally:
        proxy.heal()
        cut.cleanup()
        whole.cleanup()
