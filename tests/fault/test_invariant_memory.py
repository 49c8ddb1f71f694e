"""Property: every delivered message ends acked or dead-lettered (memory://, threads pool).

Random mixes of good, raising, retrying (again with/without delay), keyed, parked, unknown,
non-binding, undecodable and malformed messages are added before and while an in-process
worker runs; at quiescence nothing is pending, nothing is left in the stream or the due set,
every bad message is dead-lettered exactly once, and every good one has exactly one final
result (a retrying one after exactly its number of attempts).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celery_docket.engine import (
    Delivery,
    Docket,
    Outcome,
    ResultWrite,
    Worker,
    WorkerSettings,
    reset_memory,
)
from celery_docket.engine.native import encode_call, make_handler

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(120)]

GOOD_KINDS = ["good", "raise", "retry", "retry_later", "keyed", "keyed_dup", "parked"]
BAD_KINDS = ["unknown", "nobind", "badjson", "pickle", "no_id", "no_name", "bad_attempt"]

op = st.tuples(st.sampled_from(GOOD_KINDS + BAD_KINDS), st.integers(0, 3))


def good(x: int) -> int:
    return x * 2


def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


def retry(n: int) -> None:  # never called: the test handler answers for it
    raise AssertionError


@settings(
    max_examples=60,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(op, min_size=1, max_size=30), split=st.floats(0, 1), conc=st.integers(1, 4))
def test_every_delivered_message_ends_acked_or_dead_lettered(
    ops: list[tuple[str, int]], split: float, conc: int
) -> None:
    name = uuid.uuid4().hex[:10]
    d = Docket(f"memory://{name}", prefix="inv")
    try:
        _run_example(d, ops, split, conc)
    finally:
        d.close()
        reset_memory(name)


def _run_example(d: Docket, ops: list[tuple[str, int]], split: float, conc: int) -> None:
    d.task(good, name="h.good")
    d.task(boom, name="h.boom")
    d.task(retry, name="h.retry")
    native = make_handler(d.registry, d.results.key)
    seen: list[str] = []
    lock = threading.Lock()

    def handler(dl: Delivery) -> Any:
        with lock:
            seen.append(dl.message_id)
        if dl.function == "h.retry":
            n = json.loads(dl.body[5:])[0][0]
            if dl.attempt < n:
                when = None if dl.execution_id.endswith("-now") else int(time.time() * 1000) + 20
                return Outcome.again(when, attempt=dl.attempt + 1)
            doc = json.dumps({"ok": {"attempts": dl.attempt}}).encode()
            return Outcome.done(ResultWrite(d.results.key(dl.execution_id), doc, 60_000))
        return native(dl)

    stream = d.keys("default").stream
    d.ensure_group("default")
    expect_ok: dict[str, Any] = {}
    expect_err: set[str] = set()
    bad_mids: set[str] = set()
    body = encode_call((3,), {}, "json")

    def add(kind: str, k: int, j: int) -> None:
        if kind == "good":
            expect_ok[d.add("h.good")(k).id] = 2 * k
        elif kind == "raise":
            expect_err.add(d.add("h.boom")(k).id)
        elif kind in ("retry", "retry_later"):
            eid = f"r{j}-{'now' if kind == 'retry' else 'later'}"
            from celery_docket.engine import Call

            d.enqueue(Call("h.retry", encode_call((k + 1,), {}, "json"), execution_id=eid))
            expect_ok[eid] = {"attempts": k + 1}
        elif kind in ("keyed", "keyed_dup"):
            key = f"key-{k}" if kind == "keyed_dup" else f"key-only-{j}"
            e = d.add("h.good", key=key)(k)
            if e.added:
                expect_ok.setdefault(e.id, 2 * k)
        elif kind == "parked":
            expect_ok[d.add("h.good", when=0.01 * (k + 1) + time.time())(k).id] = 2 * k
        else:
            fields: dict[str, Any] = {
                "unknown": {"i": f"b{j}", "n": "nobody", "b": body},
                "nobind": {"i": f"b{j}", "n": "h.good", "b": encode_call((1, 2), {}, "json")},
                "badjson": {"i": f"b{j}", "n": "h.good", "b": b"json:[[1"},
                "pickle": {"i": f"b{j}", "n": "h.good", "b": b"pickle:\x80\x04K\x01."},
                "no_id": {"n": "h.good", "b": body},
                "no_name": {"i": f"b{j}", "b": body},
                "bad_attempt": {"i": f"b{j}", "n": "h.good", "b": body, "a": "x"},
            }[kind]
            bad_mids.add(d.redis.xadd(stream, fields).decode())

    cut = int(len(ops) * split)
    for j, (kind, k) in enumerate(ops[:cut]):
        add(kind, k, j)
    w = Worker(
        d,
        handler,
        WorkerSettings(
            pool="threads", concurrency=conc, lease_seconds=10, block_ms=20, max_deliveries=3
        ),
    )
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    try:
        assert w.ready.wait(5)
        for j, (kind, k) in enumerate(ops[cut:], start=cut):
            add(kind, k, j)

        def quiet() -> bool:
            r = d.redis
            pend = int(r.xpending(stream, "workers")["pending"])
            results = d.results.get_many(list(expect_ok) + list(expect_err))
            return (
                pend == 0
                and r.xlen(stream) == 0
                and r.zcard(d.keys("default").due) == 0
                and r.xlen(d.keys("default").dead) >= len(bad_mids)
                and all(v is not None for v in results)
            )

        deadline = time.monotonic() + 15
        while not quiet():
            assert time.monotonic() < deadline, "did not quiesce"
            time.sleep(0.02)
    finally:
        w.stop()
        t.join(10)
    assert not t.is_alive(), "worker did not stop"

    dead = d.redis.xrange(d.keys("default").dead)
    dead_mids = Counter(f[b"m"].decode() for _mid, f in dead)
    assert all(c == 1 for c in dead_mids.values()), f"dead-lettered twice: {dead_mids}"
    assert set(dead_mids) == bad_mids, set(dead_mids) ^ bad_mids
    assert all(f[b"r"] for _mid, f in dead), "a dead letter without a reason"
    # every message the handler saw is acked (gone from the PEL) and not in the stream
    assert int(d.redis.xpending(stream, "workers")["pending"]) == 0
    assert d.redis.xlen(stream) == 0
    assert not set(seen) - bad_mids & set(dead_mids)
    assert len(seen) == len(set(seen)), "a message was delivered to the handler twice"
    for eid, value in expect_ok.items():
        assert json.loads(d.results.get(eid)) == {"ok": value}, eid
    for eid in expect_err:
        assert json.loads(d.results.get(eid))["error"]["type"] == "ValueError"
    # no execution record is left behind (keyed ones are removed when they finish)
    assert d.redis.keys(d.keys("default").run_prefix + "*") == []
