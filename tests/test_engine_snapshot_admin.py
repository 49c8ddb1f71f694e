"""engine/snapshot.py and engine/admin.py against the structures the engine writes
(each test runs on memory:// and on a real redis-server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from celery_docket.engine import Call, Docket, admin, snapshot
from celery_docket.engine.keys import heartbeat_key, workers_key


@pytest.fixture
def docket(broker_url: str, prefix: str) -> Iterator[Docket]:
    d = Docket(broker_url, prefix=prefix)
    d.ensure_group("default")
    yield d
    d.close()


def test_counts_parked_and_purge(docket: Docket) -> None:
    docket.enqueue_many([Call("f", b"now") for _ in range(3)])
    docket.enqueue(Call("f", b"later", when=timedelta(hours=1), key="k1"))
    docket.enqueue(Call("f", b"tick", when=timedelta(hours=2), key="beat:x", perpetual=True))
    counts = snapshot.queue_counts(docket, ["default", "empty"])
    assert counts["default"] == snapshot.QueueCounts(length=3, parked=2, dead=0, pending=0)
    assert counts["default"].ready == 3
    assert counts["empty"] == snapshot.QueueCounts(0, 0, 0, 0)

    entries = snapshot.parked(docket, "default")
    assert [(e.execution_id, e.body, e.perpetual) for e in entries] == [
        ("k1", b"later", False),
        ("beat:x", b"tick", True),
    ]
    assert entries[0].due_ms < entries[1].due_ms
    assert [e.execution_id for e in snapshot.parked(docket, "default", limit=1)] == ["k1"]

    # delivered work stays: take one entry into the group first
    docket.redis.xreadgroup("workers", "c1", {docket.keys("default").stream: ">"}, count=1)
    assert snapshot.queue_counts(docket, ["default"])["default"].pending == 1
    assert admin.purge(docket, ["default"], chunk=1) == 3  # two ready, one parked
    after = snapshot.queue_counts(docket, ["default"])["default"]
    assert (after.length, after.parked, after.pending) == (1, 1, 1)
    assert docket.execution_record("k1") == {}


def test_execution_records_cancel_many_and_stream_bodies(docket: Docket) -> None:
    docket.enqueue(Call("f", b"queued-body", key="q1"))
    docket.enqueue(Call("f", b"parked-body", key="p1", when=timedelta(hours=1)))
    records = snapshot.execution_records(
        docket, [("default", "q1"), ("default", "p1"), ("default", "none"), ("other", "q1")]
    )
    queued, parked, missing, elsewhere = records
    assert queued is not None and queued.state == "queued" and queued.body is None
    assert queued.message_id
    assert parked is not None and (parked.state, parked.body) == ("parked", b"parked-body")
    assert missing is None and elsewhere is None
    assert snapshot.stream_bodies(docket, [("default", queued.message_id), ("default", "1-0")]) == [
        b"queued-body",
        None,
    ]
    outcomes = admin.cancel_many(docket, [("default", "q1"), ("default", "p1"), ("default", "x")])
    assert outcomes == ["queued", "parked", "missing"]
    assert admin.cancel_many(docket, []) == []
    assert snapshot.execution_records(docket, [("default", "q1")]) == [None]


def test_dead_letters_replay_and_drop(docket: Docket) -> None:
    dead = docket.keys("default").dead
    docket.redis.xadd(
        dead,
        {"q": "default", "i": "e1", "n": "f", "r": "boom", "a": "2", "k": "1", "t": "1000"},
    )
    docket.redis.xadd(dead, {"i": "e2", "n": "f", "r": "x", "a": "bad", "b": b"B2"})
    letters = admin.dead_letters(docket, "default")
    assert [d.execution_id for d in letters] == ["e2", "e1"]  # newest first
    newest, oldest = letters
    assert (newest.attempt, newest.keyed, newest.when, newest.body) == (1, False, 0.0, b"B2")
    assert (oldest.attempt, oldest.keyed, oldest.when, oldest.reason) == (2, True, 1.0, "boom")
    assert len(admin.dead_letters(docket, "default", count=1)) == 1

    execution = admin.replay(docket, oldest)
    assert execution.added and execution.id == "e1"
    assert docket.execution_record("e1")["a"] == "2"
    assert [d.execution_id for d in admin.dead_letters(docket, "default")] == ["e2"]
    # replaying a keyed letter whose key is live again adds nothing and keeps the letter
    docket.redis.xadd(dead, {"i": "e1", "n": "f", "k": "1"})
    again = admin.dead_letters(docket, "default")[0]
    assert not admin.replay(docket, again).added
    assert len(admin.dead_letters(docket, "default")) == 2

    assert admin.drop_dead(docket, admin.dead_letters(docket, "default")) == 2
    assert admin.dead_letters(docket, "default") == []
    assert admin.drop_dead(docket, []) == 0


def test_heartbeats_drop_expired_index_entries(docket: Docket) -> None:
    r, prefix = docket.redis, docket.prefix
    r.set(heartbeat_key(prefix, "alive"), json.dumps({"consumer": "alive"}))
    r.set(heartbeat_key(prefix, "garbled"), b"{not json")
    r.zadd(workers_key(prefix), {"alive": 1, "garbled": 2, "gone": 3})
    assert snapshot.heartbeats(docket) == [{"consumer": "alive"}]
    assert sorted(m.decode() for m in r.zrange(workers_key(prefix), 0, -1)) == [
        "alive",
        "garbled",
    ]
    r.delete(workers_key(prefix))
    assert snapshot.heartbeats(docket) == []


def test_held_deliveries_decode_the_heartbeat_fields() -> None:
    beat = {
        "deliveries": [
            {"m": "1-0", "i": "e1", "q": "a", "n": "f", "c": 2, "r": 1.0, "s": 2.0},
            {"i": "e2"},
        ]
    }
    running, waiting = snapshot.held_deliveries(beat)
    assert running == snapshot.HeldDelivery("1-0", "e1", "a", "f", 2, 1.0, 2.0)
    assert (waiting.execution_id, waiting.delivery_count, waiting.started_at) == ("e2", 1, None)
    assert snapshot.held_deliveries({}) == []
