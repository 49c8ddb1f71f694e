"""One table per Lua script (engine/scripts.py), run against a real redis-server.

Each row starts from an empty queue, sets a situation up with the engine's own scripts and
plain commands, calls the script under test with arguments built the way the engine builds
them (``entries.CommitEntry`` / ``FastAck`` for the batched commits), and checks the reply
and what the script left in Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from celery_docket.engine.entries import COMMIT_LAYOUT, FAST_ACK_LAYOUT, CommitEntry, FastAck
from celery_docket.engine.keys import GROUP, QueueKeys
from celery_docket.engine.lua import Script
from celery_docket.engine.messages import Delivery, Outcome, ResultWrite, decode_entry
from celery_docket.engine.scripts import ACK_FAST, ADD, CANCEL, COMPLETE, HANDBACK, MOVE, RENEW

pytestmark = pytest.mark.redis

FAR = 4_000_000_000_000  # a due time far in the future (ms)


@dataclass
class Q:
    """One queue on the server under test, with the calls the engine makes."""

    r: Any
    k: QueueKeys

    def add(
        self,
        eid: str,
        *,
        keyed: bool = False,
        when: int | str = "",
        replace: bool = False,
        once: str = "",
    ) -> list[str]:
        k = self.k
        reply = Script(ADD)(
            self.r,
            [k.stream, k.due, k.run(eid), *([k.once(once)] if once else [])],
            [k.wake, eid, "fn", b"body", when, "1" if keyed else "", "1" if replace else "",
             1, "", GROUP, 60_000],
        )  # fmt: skip
        return [_text(x) for x in reply]

    def read(self, consumer: str = "c1") -> list[Delivery]:
        reply = self.r.xreadgroup(GROUP, consumer, {self.k.stream: ">"}, count=100)
        return [decode_entry("q", _text(mid), f) for _s, entries in reply for mid, f in entries]

    def steal(self, d: Delivery, consumer: str = "c2") -> None:
        self.r.xclaim(self.k.stream, GROUP, consumer, 0, [d.message_id])

    def commit(self, *entries: CommitEntry) -> list[int]:
        k = self.k
        args: list[Any] = [GROUP, "c1", k.run_prefix, k.wake, "q"]
        for e in entries:
            args += e
        return [int(x) for x in Script(COMPLETE)(self.r, [k.stream, k.due, k.dead], args)]

    def pending(self) -> dict[str, str]:
        rows = self.r.xpending_range(self.k.stream, GROUP, "-", "+", 100)
        return {_text(p["message_id"]): _text(p["consumer"]) for p in rows}

    def stream(self) -> list[dict[str, str]]:
        return [
            {_text(a): _text(b) for a, b in fields.items()}
            for _mid, fields in self.r.xrange(self.k.stream)
        ]

    def record(self, eid: str) -> dict[str, str]:
        return {_text(a): _text(b) for a, b in self.r.hgetall(self.k.run(eid)).items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture
def q(redis_server_url: str, prefix: str) -> Iterator[Q]:
    client = redis.Redis.from_url(redis_server_url)
    k = QueueKeys(prefix, "q")
    client.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
    yield Q(client, k)
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)
    client.close()


def test_the_lua_prologue_reads_what_python_sends() -> None:
    assert COMMIT_LAYOUT.stride == len(CommitEntry._fields) == 14
    assert FAST_ACK_LAYOUT.stride == len(FastAck._fields) == 4
    assert "local mid, id, k, g, action, w, b, a, n, reason" in COMPLETE
    assert "ARGV[j+13]\n  j = j + 14\n" in COMPLETE
    assert "local mid, rkey, rval, rttl = ARGV[j], ARGV[j+1], ARGV[j+2], ARGV[j+3]" in ACK_FAST


# -- ADD ---------------------------------------------------------------------------------------


def _twice(**kw: Any) -> Callable[[Q], list[str]]:
    def run(q: Q) -> list[str]:
        q.add("e", **kw)
        return q.add("e", **kw)

    return run


def _replace_parked(q: Q) -> list[str]:
    q.add("e", keyed=True, when=FAR)
    return q.add("e", keyed=True, replace=True)


def _orphaned(q: Q) -> list[str]:
    q.add("e", keyed=True)
    q.r.delete(q.k.stream)  # the message is lost (e.g. with Redis data); its record stays
    q.r.xgroup_create(q.k.stream, GROUP, id="0", mkstream=True)
    return q.add("e", keyed=True)


ADD_TABLE = [
    # name, run, reply[:2], stream length, due size, record state, generation
    ("now", lambda q: q.add("e"), ["queued", "queued"], 1, 0, None, None),
    ("future", lambda q: q.add("e", when=FAR), ["parked", "parked"], 0, 1, "parked", "1"),
    ("keyed twice", _twice(keyed=True), ["exists", "queued"], 1, 0, "queued", "1"),
    ("keyed parked twice", _twice(keyed=True, when=FAR), ["exists", "parked"], 0, 1, "parked", "1"),
    ("replace parked", _replace_parked, ["queued", "queued"], 1, 0, "queued", "2"),
    ("once token twice", _twice(once="tok"), ["exists", "done"], 1, 0, None, None),
    ("orphaned record", _orphaned, ["queued", "queued"], 1, 0, "queued", "2"),
]


@pytest.mark.parametrize(
    ("run", "reply", "stream", "due", "state", "gen"),
    [row[1:] for row in ADD_TABLE],
    ids=[row[0] for row in ADD_TABLE],
)
def test_add(
    q: Q,
    run: Callable[[Q], list[str]],
    reply: list[str],
    stream: int,
    due: int,
    state: str | None,
    gen: str | None,
) -> None:
    assert run(q)[:2] == reply
    assert q.r.xlen(q.k.stream) == stream
    assert q.r.zcard(q.k.due) == due
    record = q.record("e")
    assert record.get("s") == state and record.get("g") == gen


# -- MOVE --------------------------------------------------------------------------------------

MOVE_TABLE = [
    # name, (due ids, future ids, keyed), limit, moved, head is future, left in due
    ("nothing parked", ([], [], False), 10, 0, None, 0),
    ("due and future", (["a", "b"], ["z"], False), 10, 2, True, 1),
    ("limit", (["a", "b", "c"], [], False), 2, 2, False, 1),
    ("keyed keeps its record", (["a"], [], True), 10, 1, None, 0),
]


@pytest.mark.parametrize(
    ("setup", "limit", "moved", "head_future", "left"),
    [row[1:] for row in MOVE_TABLE],
    ids=[row[0] for row in MOVE_TABLE],
)
def test_move(
    q: Q,
    setup: tuple[list[str], list[str], bool],
    limit: int,
    moved: int,
    head_future: bool | None,
    left: int,
) -> None:
    due_ids, future_ids, keyed = setup
    soon = int(time.time() * 1000) + 50
    for eid in due_ids:
        q.add(eid, keyed=keyed, when=soon)
    for eid in future_ids:
        q.add(eid, when=FAR)
    time.sleep(0.1)
    k = q.k
    count, head, now, micros = Script(MOVE)(q.r, [k.due, k.stream], [k.run_prefix, limit])
    assert 0 <= int(micros) < 1000
    assert int(count) == moved
    assert q.r.xlen(k.stream) == moved and q.r.zcard(k.due) == left
    if head_future is None:
        assert _text(head) == "-1"
    else:
        assert (float(head) > int(now)) is head_future
    for eid in due_ids[:moved]:
        record = q.record(eid)
        if keyed:
            assert record["s"] == "queued" and record["m"]
        else:
            assert record == {}


# -- COMPLETE ----------------------------------------------------------------------------------

RESULT = ResultWrite("res", b"value", 60_000)

COMPLETE_TABLE = [
    # name, keyed, outcome, fence, stolen, reply, stream entries left, parked, dead
    ("ack with result", False, Outcome.done(RESULT), True, False, 1, 0, 0, 0),
    ("fenced after a lost lease", False, Outcome.done(RESULT), True, True, 0, 1, 0, 0),
    ("unfenced after a lost lease", False, Outcome.done(), False, True, 1, 0, 0, 0),
    ("again now", False, Outcome.again(None, b"b2", 2), True, False, 1, 1, 0, 0),
    ("again later", True, Outcome.again(FAR, b"b2", 2), True, False, 1, 0, 1, 0),
    ("dead", False, Outcome.dead("poison"), True, False, 1, 0, 0, 1),
    ("keyed ack", True, Outcome.done(), True, False, 1, 0, 0, 0),
]


@pytest.mark.parametrize(
    ("keyed", "outcome", "fence", "stolen", "reply", "left", "parked", "dead"),
    [row[1:] for row in COMPLETE_TABLE],
    ids=[row[0] for row in COMPLETE_TABLE],
)
def test_complete(
    q: Q,
    keyed: bool,
    outcome: Outcome,
    fence: bool,
    stolen: bool,
    reply: int,
    left: int,
    parked: int,
    dead: int,
) -> None:
    q.r.delete(RESULT.key)
    q.add("e", keyed=keyed)
    (d,) = q.read()
    if stolen:
        q.steal(d)
    assert q.commit(CommitEntry.of(d, outcome, fence=fence)) == [reply]
    assert q.r.xlen(q.k.stream) == left and q.r.zcard(q.k.due) == parked
    assert q.r.xlen(q.k.dead) == dead
    assert (d.message_id in q.pending()) is (reply == 0)
    if outcome.result is not None:
        assert q.r.get(RESULT.key) == (RESULT.value if reply else None)
    if outcome.action == "again" and left:
        assert q.stream()[0]["a"] == "2" and q.stream()[0]["b"] == "b2"
    if dead:
        ((_mid, fields),) = q.r.xrange(q.k.dead)
        assert fields[b"r"] == b"poison" and fields[b"q"] == b"q" and fields[b"m"]
    record = q.record("e")
    if keyed and outcome.action == "ack":
        assert record == {}
    if parked:
        assert record["s"] == "parked" and record["a"] == "2"


def test_complete_ignores_an_outdated_generation_of_a_keyed_execution(q: Q) -> None:
    q.add("e", keyed=True)
    (d,) = q.read()
    q.r.hset(q.k.run("e"), "g", "7")  # replaced meanwhile: the record is a newer execution
    assert q.commit(CommitEntry.of(d, Outcome.again(None), fence=True)) == [1]
    assert q.r.xlen(q.k.stream) == 0 and q.record("e")["g"] == "7"


def test_complete_answers_each_entry_of_a_batch(q: Q) -> None:
    for eid in ("a", "b", "c"):
        q.add(eid)
    a, b, c = q.read()
    q.steal(b)
    entries = [CommitEntry.of(x, Outcome.done(), fence=True) for x in (a, b, c)]
    assert q.commit(*entries) == [1, 0, 1]


# -- ACK_FAST ----------------------------------------------------------------------------------

ACK_FAST_TABLE = [
    # name, results, acked before, reply
    ("one with a result", [RESULT], 0, [1]),
    ("no result", [None], 0, [1]),
    ("a batch", [RESULT, None], 0, [1, 1]),
    ("already acked", [RESULT], 1, [0]),
]


@pytest.mark.parametrize(
    ("results", "acked", "reply"),
    [row[1:] for row in ACK_FAST_TABLE],
    ids=[row[0] for row in ACK_FAST_TABLE],
)
def test_ack_fast(q: Q, results: list[ResultWrite | None], acked: int, reply: list[int]) -> None:
    q.r.delete(RESULT.key)
    for i in range(len(results)):
        q.add(f"e{i}")
    deliveries = q.read()
    for d in deliveries[:acked]:
        q.r.xack(q.k.stream, GROUP, d.message_id)
    args: list[Any] = [GROUP]
    for d, r in zip(deliveries, results, strict=True):
        args += FastAck.of(d, Outcome.done(r))
    assert [int(x) for x in Script(ACK_FAST)(q.r, [q.k.stream], args)] == reply
    assert q.pending() == {}
    assert q.r.xlen(q.k.stream) == acked  # an entry acked elsewhere is not deleted here
    expect = RESULT.value if RESULT in results and not acked else None
    assert q.r.get(RESULT.key) == expect
    if expect is not None:
        assert 0 < q.r.pttl(RESULT.key) <= RESULT.ttl_ms


# -- RENEW, HANDBACK, CANCEL -------------------------------------------------------------------


@pytest.mark.parametrize(("stolen", "lost"), [(False, False), (True, True)], ids=["own", "lost"])
def test_renew(q: Q, stolen: bool, lost: bool) -> None:
    q.add("e")
    (d,) = q.read()
    if stolen:
        q.steal(d)
    time.sleep(0.05)
    reply = Script(RENEW)(q.r, [q.k.stream], [GROUP, "c1", d.message_id])
    assert [_text(x) for x in reply] == ([d.message_id] if lost else [])
    (row,) = q.r.xpending_range(q.k.stream, GROUP, "-", "+", 1)
    if not lost:
        assert row["time_since_delivered"] < 50  # idle time reset


@pytest.mark.parametrize(
    ("keyed", "stolen", "handed"),
    [(False, False, 1), (True, False, 1), (False, True, 0)],
    ids=["own", "own keyed", "not ours"],
)
def test_handback(q: Q, keyed: bool, stolen: bool, handed: int) -> None:
    q.add("e", keyed=keyed)
    (d,) = q.read()
    if stolen:
        q.steal(d)
    k = q.k
    assert Script(HANDBACK)(q.r, [k.stream], [GROUP, "c1", k.run_prefix, d.message_id]) == handed
    if handed:
        (again,) = q.read("c3")
        assert again.message_id != d.message_id and again.execution_id == "e"
        assert q.pending() == {again.message_id: "c3"}
        if keyed:
            assert q.record("e")["m"] == again.message_id
    else:
        assert q.pending() == {d.message_id: "c2"}


def test_handback_of_one_entry_named_twice_re_adds_it_once(q: Q) -> None:
    q.add("e", keyed=True)
    (d,) = q.read()
    k = q.k
    args = [GROUP, "c1", k.run_prefix, d.message_id, d.message_id]
    assert Script(HANDBACK)(q.r, [k.stream], args) == 1
    assert len(q.read("c3")) == 1


CANCEL_TABLE = [
    # name, keyed, when, read first, reply, stream left, due left
    ("missing", None, "", False, "missing", 0, 0),
    ("parked", False, FAR, False, "parked", 0, 0),
    ("queued keyed", True, "", False, "queued", 0, 0),
    ("running keyed", True, "", True, "running", 1, 0),
]


@pytest.mark.parametrize(
    ("keyed", "when", "read", "reply", "stream", "due"),
    [row[1:] for row in CANCEL_TABLE],
    ids=[row[0] for row in CANCEL_TABLE],
)
def test_cancel(
    q: Q, keyed: bool | None, when: int | str, read: bool, reply: str, stream: int, due: int
) -> None:
    if keyed is not None:
        q.add("e", keyed=keyed, when=when)
    if read:
        q.read()
    k = q.k
    assert _text(Script(CANCEL)(q.r, [k.stream, k.due, k.run("e")], [GROUP, "e"])) == reply
    assert q.r.xlen(k.stream) == stream and q.r.zcard(k.due) == due
    assert q.record("e") == {}
