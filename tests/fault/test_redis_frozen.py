"""FAULTS row 9: the Redis under test is frozen (SIGSTOP) with its TCP connections left open.

A stopped server sends no RST and no FIN: the kernel keeps acknowledging bytes, so a client
without a socket timeout waits forever on a reply. Nothing may hang: the worker must notice
within a bound and say so, a producer's ``add`` must fail with a typed error, and once the
server runs again (SIGCONT) the same worker process carries on, losing nothing acknowledged.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_docket.engine import BrokerUnavailable, Docket
from tests.fault.harness import (
    Cluster,
    Producer,
    committed_results,
    starts_by_id,
    test_docket,
    wait_until,
)
from tests.fault.proc_worker import Ledger
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(150)]

FREEZE_SECONDS = float(os.environ.get("CD_FAULT_FREEZE_SECONDS", "30"))
NOTICE_BOUND = 15.0
"""The worker must report the frozen server within this many seconds (its command timeout)."""


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    server = RedisServer().start()
    try:
        yield server
    finally:
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


def test_frozen_redis_hangs_nothing_and_the_worker_resumes(
    own_server: RedisServer, prefix: str, ledger_dir: Path, test_ledger: Ledger
) -> None:
    assert own_server.proc is not None
    docket: Docket = test_docket(own_server.url, prefix)
    producer = Producer(docket, test_ledger)
    cluster = Cluster(own_server.url, prefix, ledger_dir)
    try:
        worker = cluster.spawn("frozen", pool="threads", concurrency=2, lease=3)
        before = [producer.add(20).id for _ in range(30)]
        wait_until(lambda: all(committed_results(docket, before).values()), 30, 0.1, "warm-up ran")
        in_flight = [producer.add(300).id for _ in range(6)]
        time.sleep(0.2)

        frozen_at = time.monotonic()
        os.kill(own_server.proc.pid, signal.SIGSTOP)
        outcome: dict[str, object] = {}

        def add_while_frozen() -> None:
            try:
                producer.add(10)
                outcome["added"] = True
            except BrokerUnavailable as exc:
                outcome["refused"] = exc
            outcome["after"] = time.monotonic() - frozen_at

        adder = threading.Thread(target=add_while_frozen, daemon=True)
        adder.start()
        adder.join(NOTICE_BOUND + 5)
        assert not adder.is_alive(), "a producer's add hung on the frozen server"
        assert "refused" in outcome, outcome

        def noticed() -> bool:
            log = worker.log().lower()
            return "not responding" in log or "timeout" in log or "timed out" in log

        wait_until(noticed, NOTICE_BOUND, 0.2, "the worker reports the frozen server")
        noticed_after = time.monotonic() - frozen_at
        assert worker.alive(), worker.log()[-2000:]
        time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen_at)))
        os.kill(own_server.proc.pid, signal.SIGCONT)
        resumed_at = time.monotonic()

        after = [producer.add(20).id for _ in range(20)]
        ids = before + in_flight + after
        wait_until(
            lambda: all(committed_results(docket, ids).values()),
            40,
            0.2,
            "every acknowledged add committed after SIGCONT",
        )
        recovered = time.monotonic() - resumed_at
        results = committed_results(docket, ids)
        assert {r["ok"]["pid"] for r in results.values() if r} == {worker.pid}
        starts = starts_by_id(cluster.records())
        reran = [i for i in before + after if len(starts[i]) > 1]
        assert reran == [], f"tasks that were not in flight ran twice: {reran}"
        print(
            f"\nredis frozen {FREEZE_SECONDS:.0f}s: add refused after {outcome['after']:.1f}s, "
            f"worker noticed after {noticed_after:.1f}s, all {len(ids)} committed "
            f"{recovered:.1f}s after SIGCONT; in-flight re-runs "
            f"{sum(len(starts[i]) > 1 for i in in_flight)} of {len(in_flight)}"
        )
        codes = cluster.stop_all(timeout=20)
        assert codes[worker.pid] == 0, (codes, worker.log()[-2000:])
    finally:
        if own_server.proc is not None:
            os.kill(own_server.proc.pid, signal.SIGCONT)
        cluster.cleanup()
        docket.close()
