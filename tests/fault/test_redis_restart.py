"""The Redis under test is SIGKILLed and restarted (appendonly yes, everysec) during a run."""

from __future__ import annotations

import random
import shutil
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
    dead_entries,
    pending_count,
    starts_by_id,
    test_docket,
    wait_until,
)
from tests.fault.proc_worker import Ledger
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(120)]

AOF_WINDOW = 1.0
"""appendfsync everysec: what was acknowledged in the last second before a crash may be lost."""


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    server = RedisServer(appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


def test_workers_survive_a_redis_crash_and_restart(
    aof_server: RedisServer, prefix: str, ledger_dir: Path, test_ledger: Ledger
) -> None:
    docket: Docket = test_docket(aof_server.url, prefix)
    producer = Producer(docket, test_ledger)
    cluster = Cluster(aof_server.url, prefix, ledger_dir)
    rng = random.Random(99)
    refused = 0
    stop = threading.Event()
    phase = {"after_restart": False}
    after_restart: list[str] = []

    def feed() -> None:
        nonlocal refused
        for _ in range(2000):  # bounded: ~400 adds plus refused attempts while Redis is down
            if stop.is_set() or len(producer.ids) >= 400:
                return
            try:
                e = producer.add(rng.randint(20, 100))
                if phase["after_restart"]:
                    after_restart.append(e.id)
            except BrokerUnavailable:
                refused += 1
            time.sleep(0.02)

    try:
        workers = [cluster.spawn(f"r{i}", pool="threads", concurrency=4, lease=2) for i in range(2)]
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        time.sleep(2.5)
        # what is committed (acked with its result) right before the crash
        before = [i for i, r in committed_results(docket, list(producer.ids)).items() if r]
        assert len(before) > 20
        crashed_at = time.time()
        aof_server.kill()
        time.sleep(1.5)
        aof_server.start()
        restarted_at = time.time()
        phase["after_restart"] = True
        feeder.join(60)
        assert not feeder.is_alive()
        assert refused > 0, "the producer never saw the outage"
        assert len(after_restart) > 50
        ids = list(producer.ids)

        def all_done() -> bool:
            return all(r is not None for r in committed_results(docket, ids).values())

        try:
            wait_until(all_done, 45, 0.25, "every acknowledged add has a result")
        except AssertionError:
            pass  # reported below, with the AOF window
        assert all(w.alive() for w in workers), [w.log()[-1500:] for w in workers]
        results = committed_results(docket, ids)
        records = cluster.records()
        enq_t = {r[1]: float(r[2]) for r in records if r[0] == "ENQ"}
        lost = [i for i in ids if results[i] is None]
        in_window = [i for i in lost if crashed_at - AOF_WINDOW <= enq_t[i] <= crashed_at]
        lost_before = [i for i in before if results[i] is None]
        starts = starts_by_id(records)
        reran = [i for i in before if len(starts[i]) > 1]
        print(
            f"\nredis restart: {len(ids)} adds acknowledged, {refused} refused while down, "
            f"{len(after_restart)} after restart; lost {len(lost)} "
            f"({len(in_window)} in the {AOF_WINDOW}s AOF window); committed-before-crash "
            f"lost {len(lost_before)}, re-run {len(reran)}; "
            f"recovered in {time.time() - restarted_at:.1f}s"
        )
        assert lost_before == [], "results committed before the crash were lost"
        assert reran == [], "tasks committed before the crash ran again"
        assert [i for i in lost if i not in in_window] == [], "lost outside the AOF window"
        assert lost == [], f"{len(lost)} adds acknowledged in the last {AOF_WINDOW}s were lost"
        # tasks added after the restart ran on the very same worker processes
        pids = {results[i]["ok"]["pid"] for i in after_restart}
        assert pids <= {w.pid for w in workers}
        assert pending_count(docket) == 0
        assert dead_entries(docket) == []
        codes = cluster.stop_all()
        assert set(codes.values()) == {0}, codes
    finally:
        stop.set()
        cluster.cleanup()
        docket.close()
