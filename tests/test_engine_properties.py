"""Invariants of the engine, checked with hypothesis."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celery_docket.engine import (
    Call,
    ContentRefused,
    Docket,
    Outcome,
    Worker,
    WorkerSettings,
    codec,
)
from tests.engine_helpers import running

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_json_codec_round_trips(value: object) -> None:
    assert codec.decode(codec.encode(value)) == value


@given(json_values)
def test_pickle_round_trips_only_when_accepted(value: object) -> None:
    body = codec.encode(value, codec.PICKLE)
    assert codec.decode(body, frozenset({codec.PICKLE})) == value
    with pytest.raises(ContentRefused):
        codec.decode(body)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_the_decoder(raw: bytes) -> None:
    try:
        codec.decode(raw, frozenset({codec.JSON, codec.PICKLE}) - {codec.PICKLE})
    except ContentRefused:
        pass


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "add_later", "replace", "cancel"]),
        st.sampled_from(["a", "b", "c"]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_at_most_one_live_execution_per_key(operations: list[tuple[str, str]]) -> None:
    """Whatever mix of adds, replaces and cancels: one record and one queued copy per key."""
    d = Docket(f"memory://{uuid.uuid4().hex}")
    for op, key in operations:
        if op == "add":
            d.enqueue(Call("f", b"json:[[],{}]", key=key))
        elif op == "add_later":
            d.enqueue(Call("f", b"json:[[],{}]", key=key, when=timedelta(hours=1)))
        elif op == "replace":
            d.enqueue(Call("f", b"json:[[],{}]", key=key, replace=True))
        else:
            d.cancel(key)
    k = d.keys("default")
    entries = [f[b"i"].decode() for _mid, f in d.redis.xrange(k.stream)]
    parked = [m.decode() for m in d.redis.zrange(k.due, 0, -1)]
    live = entries + parked
    assert len(live) == len(set(live)), f"a key is live twice: {live}"
    for key in set(live):
        assert d.execution_record(key), f"{key} is live without a record"
    for key in {"a", "b", "c"} - set(live):
        assert not d.execution_record(key)


behaviours = st.lists(st.sampled_from(["ok", "raise", "dead", "again", "bad"]), max_size=30)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(behaviours, st.sampled_from(["solo", "threads"]))
def test_every_delivered_message_ends_acked_or_dead_lettered(kinds: list[str], pool: str) -> None:
    d = Docket(f"memory://{uuid.uuid4().hex}")
    k = d.keys("default")

    def handler(delivery):
        kind = delivery.function
        if kind == "raise":
            raise RuntimeError("handler bug")
        if kind == "dead":
            return Outcome.dead("asked to")
        if kind == "again" and delivery.attempt == 1:
            return Outcome.again(None, attempt=2)
        return Outcome.done()

    for kind in kinds:
        if kind == "bad":
            d.redis.xadd(k.stream, {"junk": "1"})
        else:
            d.enqueue(Call(kind, b"json:[[],{}]"))
    expected_dead = sum(kind in ("raise", "dead", "bad") for kind in kinds)
    worker = Worker(d, handler, WorkerSettings(pool=pool, concurrency=3, block_ms=50))
    with running(worker):
        import time

        deadline = time.time() + 10
        while time.time() < deadline:
            pending = d.redis.xpending(k.stream, "workers")["pending"]
            if not d.redis.xlen(k.stream) and not pending:
                break
            time.sleep(0.01)
    assert d.redis.xlen(k.stream) == 0
    assert d.redis.xpending(k.stream, "workers")["pending"] == 0
    assert d.redis.xlen(k.dead) == expected_dead


@given(st.floats(min_value=1e9, max_value=4e9, allow_nan=False))
def test_due_times_round_up_so_work_never_starts_early(seconds: float) -> None:
    from celery_docket.engine.clock import to_epoch_ms

    ms = to_epoch_ms(seconds)
    assert ms is not None
    assert ms / 1000 >= seconds - 1e-6  # float noise only
    assert ms - seconds * 1000 < 1.001
