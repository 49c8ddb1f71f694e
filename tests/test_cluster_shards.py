"""Sharded queues through the facade (``docket_queue_shards``) on a real Redis Cluster, and a
master killed under load on a cluster with replicas.

Ledgers live outside the cluster under test (the shared plain redis-server, keys under the
test's prefix), so what the cluster loses cannot hide from them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from celery_docket import Celery
from celery_docket.control import dead_entries, known_queues, queue_overview, replay_dead
from celery_docket.engine.keys import QueueKeys
from celery_docket.exceptions import Reject
from celery_docket.worker import WorkController
from tests.cluster import ClusterTopology
from tests.topology import wait_for

SHARDS = 3


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterTopology]:
    t = ClusterTopology().start()
    try:
        yield t
    finally:
        t.stop()


def _slot_owners(cluster: ClusterTopology) -> dict[int, int]:
    """Slot -> port of the master serving it, from one CLUSTER SLOTS."""
    with redis.Redis("127.0.0.1", cluster.nodes[0].port) as r:
        rows = r.execute_command("CLUSTER SLOTS")
    return {
        slot: int(primary[1])
        for start, end, primary, *_ in rows
        for slot in range(int(start), int(end) + 1)
    }


def _queue_on_distinct_masters(cluster: ClusterTopology, prefix: str) -> str:
    """A queue name whose ``SHARDS`` shard streams are served by ``SHARDS`` masters."""
    owners = _slot_owners(cluster)
    for i in range(1000):
        name = f"work{i}"
        homes = {
            owners[key_slot(QueueKeys(prefix, f"{name}#{s}").stream.encode())]
            for s in range(SHARDS)
        }
        if len(homes) == SHARDS:
            return name
    raise AssertionError("no queue name spreads its shards over every master")


def _app(
    url: str, prefix: str, queue: str, ledger_url: str, shards: int = SHARDS, **conf: Any
) -> Celery:
    """An app whose ``sh.note`` counts its runs in a hash on the ledger server, and notes
    which worker ran which shard."""
    app = Celery(f"s{uuid.uuid4().hex[:6]}", broker=url, set_as_current=False)
    app.conf.update(
        docket_key_prefix=prefix,
        docket_queue_shards={queue: shards},
        task_default_queue=queue,
        task_ignore_result=True,
        **conf,
    )
    ledger = redis.Redis.from_url(ledger_url)

    @app.task(name="sh.note", bind=True)
    def note(self: Any, n: int) -> int:
        pipe = ledger.pipeline(transaction=False)
        pipe.hincrby(f"{prefix}:runs", self.request.id, 1)
        routed = (self.request.delivery_info or {}).get("routing_key")
        pipe.sadd(f"{prefix}:seen", f"{self.request.hostname}|{routed}")
        pipe.execute()
        return n

    return app


def _runs(ledger: redis.Redis, prefix: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in ledger.hgetall(f"{prefix}:runs").items()}


@pytest.mark.redis
@pytest.mark.topology
def test_a_facade_queue_of_three_shards_on_three_masters(
    cluster: ClusterTopology, redis_server_url: str, prefix: str
) -> None:
    queue = _queue_on_distinct_masters(cluster, prefix)
    producer = _app(cluster.url, prefix, queue, redis_server_url)
    docket = producer.docket
    assert docket.shard_queues(queue) == [f"{queue}#{i}" for i in range(SHARDS)]
    nodes = docket.redis.nodes_manager
    homes = {
        nodes.get_node_from_slot(key_slot(docket.keys(q).stream.encode())).name
        for q in docket.shard_queues(queue)
    }
    assert len(homes) == SHARDS, homes
    total = 3000
    note = producer.tasks["sh.note"]
    ids = {note.delay(n).id for n in range(total)}
    assert len(ids) == total

    # inspection sees one queue, with every shard's tasks in it
    assert queue in known_queues(producer)
    assert not [q for q in known_queues(producer) if q.startswith(f"{queue}#")]
    overview = queue_overview(producer, [queue])["queues"][queue]
    assert overview["ready"] == total
    ledger = redis.Redis.from_url(redis_server_url)
    apps = [_app(cluster.url, prefix, queue, redis_server_url) for _ in range(2)]
    workers = [
        WorkController(
            a, pool="threads", concurrency=4, hostname=f"w{i}@shards", setup_logging=False
        )
        for i, a in enumerate(apps)
    ]
    started = time.monotonic()
    for w in workers:
        w.start_in_thread()
    try:
        wait_for(lambda: ledger.hlen(f"{prefix}:runs") >= total, 60, "every task to run")
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # a duplicate would show by now
        print(f"\n3 shards on 3 masters, 2 workers x 4 threads: {total} tasks in {elapsed:.2f} s")
        runs = _runs(ledger, prefix)
        assert set(runs) == ids
        assert [i for i, c in runs.items() if c != 1] == []
        seen = {s.decode() for s in ledger.smembers(f"{prefix}:seen")}
        for i in range(2):
            assert {f"w{i}@shards|{q}" for q in docket.shard_queues(queue)} <= seen, seen
        wait_for(
            lambda: queue_overview(producer, [queue])["queues"][queue]["reserved"] == 0,
            10,
            "every delivery acknowledged",
        )

        # purge takes every shard: parked tasks spread over the three
        for n in range(30):
            note.apply_async((n,), countdown=300)
        assert queue_overview(producer, [queue])["queues"][queue]["scheduled"] == 30
        assert producer.control.purge() == 30
        assert queue_overview(producer, [queue])["queues"][queue]["scheduled"] == 0
        assert dead_entries(producer, [queue]) == []
    finally:
        for w in workers:
            w.stop()
        for a in [producer, *apps]:
            a.close()
        ledger.close()


def test_dead_letters_revoke_and_scheduled_see_a_sharded_queue_as_one() -> None:
    """memory://: what the control commands read of a sharded queue comes from every shard."""
    app = Celery(f"s{uuid.uuid4().hex[:6]}", broker=f"memory://{uuid.uuid4().hex[:8]}")
    app.conf.update(docket_queue_shards={"celery": SHARDS}, task_ignore_result=True)
    ran: list[int] = []

    @app.task(name="sh.refuse")
    def refuse(n: int) -> None:
        ran.append(n)
        if len(ran) <= 12:
            raise Reject("no", requeue=False)

    with pytest.raises(ValueError, match="int >= 1"):
        bad = Celery("bad", broker="memory://bad", set_as_current=False)
        bad.conf.docket_queue_shards = {"celery": "3"}
        bad.docket
    parked = [refuse.apply_async((n,), countdown=300).id for n in range(6)]
    assert len({app.docket.shard_of("celery", i) for i in parked}) > 1
    w = WorkController(app, pool="threads", concurrency=2, setup_logging=False).start_in_thread()
    try:
        scheduled = app.control.inspect().scheduled() or {}
        assert sorted(e["request"]["id"] for v in scheduled.values() for e in v) == sorted(parked)
        app.control.revoke(parked)
        wait_for(
            lambda: queue_overview(app, ["celery"])["queues"]["celery"]["scheduled"] == 0,
            5,
            "the revoked tasks to leave every shard",
        )
        for n in range(12):
            refuse.delay(n)
        dead = wait_for(lambda: len(dead_entries(app)) == 12 and dead_entries(app), 10, "dead")
        assert {d.queue for d in dead} == set(app.docket.shard_queues("celery"))
        assert queue_overview(app, ["celery"])["queues"]["celery"]["dead"] == 12
        replayed, skipped = replay_dead(app, dead)
        assert len(replayed) == 12 and not skipped
        wait_for(lambda: len(ran) == 24, 10, "the replays to run")
        assert dead_entries(app) == []
    finally:
        w.stop()
        app.close()


# -- a master killed under load ----------------------------------------------------------------


class _Producer(threading.Thread):
    """Sends ``sh.note`` as fast as ``delay()`` returns; notes when each send was acknowledged
    and how many were refused (raised) while the cluster had no master for the queue."""

    def __init__(self, app: Celery) -> None:
        super().__init__(daemon=True)
        self.task = app.tasks["sh.note"]
        self.acked: list[tuple[str, float]] = []
        self.refused: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            n += 1
            try:
                task_id = self.task.delay(n).id
            except Exception as exc:  # noqa: BLE001 - what a failover raises is the point
                self.refused.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            self.acked.append((task_id, time.monotonic()))
            time.sleep(0.002)

    def last_ack(self) -> float:
        return self.acked[-1][1] if self.acked else 0.0


def _settle(ledger: redis.Redis, prefix: str, wanted: set[str], quiet: float) -> dict[str, int]:
    """The runs once every wanted id ran, or once nothing new ran for ``quiet`` seconds (what
    is still missing then was lost), bounded by 30 s."""
    deadline = time.monotonic() + 30
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        runs = _runs(ledger, prefix)
        if wanted <= set(runs):
            return runs
        if len(runs) != last_count:
            last_count, last_change = len(runs), time.monotonic()
        elif time.monotonic() - last_change > quiet:
            return runs
        time.sleep(0.25)
    return _runs(ledger, prefix)


@pytest.mark.redis
@pytest.mark.topology
def test_a_master_killed_under_load_loses_only_the_replication_window(
    redis_server_url: str, prefix: str
) -> None:
    """3 masters + 3 replicas; a worker drains while a producer sends; ``kill -9`` of the
    queue's master; its replica is promoted. Every send acknowledged after the failover ran,
    and so did every one acknowledged before it except, at most, the last few milliseconds'
    (acknowledged by the master, not yet replicated: Redis replicates asynchronously)."""
    topo = ClusterTopology(replicas=1, node_timeout_ms=1000).start()
    ledger = redis.Redis.from_url(redis_server_url)
    conf = {"docket_lease_seconds": 2}
    producer_app = _app(topo.url, prefix, "celery", redis_server_url, shards=1, **conf)
    worker_app = _app(topo.url, prefix, "celery", redis_server_url, shards=1, **conf)
    worker = WorkController(worker_app, pool="threads", concurrency=4, setup_logging=False)
    producer = _Producer(producer_app)
    try:
        slot = key_slot(producer_app.docket.keys("celery").stream.encode())
        master = topo.node_of(slot)
        worker.start_in_thread()
        producer.start()
        wait_for(lambda: len(producer.acked) >= 300, 20, "a load before the kill")
        killed_at = time.monotonic()
        replica = topo.kill_master(master)
        wait_for(lambda: topo.is_master(replica), 20, "the replica to be promoted")
        topo.wait_ok(20)
        promoted = time.monotonic() - killed_at
        wait_for(lambda: producer.last_ack() > killed_at, 20, "a send after the failover")
        resumed = producer.last_ack() - killed_at
        time.sleep(1.5)
        producer.halt.set()
        producer.join(10)
        acked = dict(producer.acked)
        runs = _settle(ledger, prefix, set(acked), quiet=6.0)
    finally:
        producer.halt.set()
        worker.stop()
        producer_app.close()
        worker_app.close()
        topo.stop()
    lost = {i: t for i, t in acked.items() if i not in runs}
    twice = sum(1 for c in runs.values() if c > 1)
    before = sum(1 for t in acked.values() if t <= killed_at)
    print(
        f"\nkill -9 of the queue's master: promoted in {promoted:.1f} s, sends resumed after "
        f"{resumed:.1f} s; acknowledged {len(acked)} ({before} before the kill), refused "
        f"{len(producer.refused)} ({sorted(set(producer.refused))}), lost {len(lost)} "
        f"(acknowledged, not replicated), ran twice {twice}"
    )
    assert before >= 300 and len(acked) > before, "no sends on both sides of the failover"
    # only the replication window: sends acknowledged just before the kill
    assert all(killed_at - 0.5 <= t <= killed_at for t in lost.values()), lost
    assert len(lost) <= 20, lost
