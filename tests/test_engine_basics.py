"""Engine behaviour on memory:// and on a real redis-server (each test runs on both)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from celery_docket.engine import (
    Call,
    Docket,
    PayloadTooLarge,
    Perpetual,
    ResultTimeout,
    TaskFailed,
)
from tests.engine_helpers import running


@pytest.fixture
def docket(broker_url: str, prefix: str) -> Docket:
    d = Docket(broker_url, prefix=prefix)
    yield d
    d.close()


def add(x: int, y: int) -> int:
    return x + y


def test_add_now_runs_and_returns_result(docket: Docket) -> None:
    docket.task(add)
    with running(docket.worker(pool="threads", concurrency=2)):
        e = docket.add(add)(2, 3)
        assert e.state == "queued"
        assert docket.result(e.id, timeout=10) == 5


def test_failure_is_reported_with_type(docket: Docket) -> None:
    @docket.task(name="boom")
    def boom() -> None:
        raise ValueError("no way")

    with running(docket.worker(pool="solo")):
        e = docket.add("boom")()
        with pytest.raises(TaskFailed) as info:
            docket.result(e.id, timeout=10)
    assert info.value.type == "ValueError" and info.value.message == "no way"


def test_future_work_is_parked_until_due_by_redis_time(docket: Docket) -> None:
    starts: list[float] = []

    @docket.task(name="mark")
    def mark() -> None:
        starts.append(time.time())

    with running(docket.worker(pool="solo")):
        due = time.time() + 0.5
        e = docket.add("mark", when=timedelta(seconds=0.5))()
        assert e.state == "parked"
        assert docket.redis.zscore(docket.keys("default").due, e.id) is not None
        docket.results.wait(e.id, timeout=10)
    assert len(starts) == 1
    # never early (10 ms allowance for the local-vs-Redis clock read), and not very late
    assert starts[0] >= due - 0.01
    assert starts[0] - due < 1.0


def test_key_is_idempotent_while_live_and_replace_reschedules(docket: Docket) -> None:
    docket.task(add)
    first = docket.add(add, when=timedelta(hours=1), key="k")(1, 1)
    second = docket.add(add, when=timedelta(minutes=1), key="k")(2, 2)
    assert first.added and not second.added
    assert second.state == "parked" and second.when_ms == first.when_ms
    assert docket.redis.zcard(docket.keys("default").due) == 1
    third = docket.add(add, key="k", replace=True)(3, 3)
    assert third.added and third.state == "queued"
    assert docket.redis.zcard(docket.keys("default").due) == 0
    with running(docket.worker(pool="solo")):
        assert docket.result("k", timeout=10) == 6
    # once done, the key is free again
    again = docket.add(add, key="k")(4, 4)
    assert again.added


def test_cancel_removes_parked_and_queued(docket: Docket) -> None:
    docket.task(add)
    parked = docket.add(add, when=timedelta(hours=1), key="p")(1, 1)
    queued = docket.add(add, key="q")(1, 1)
    assert docket.cancel(parked.id) == "parked"
    assert docket.cancel(queued.id) == "queued"
    assert docket.cancel("nope") == "missing"
    assert docket.redis.xlen(docket.keys("default").stream) == 0
    assert docket.redis.zcard(docket.keys("default").due) == 0


def test_batch_enqueue_pipelines_thousands(docket: Docket) -> None:
    calls = [Call("f", b"json:[[],{}]") for _ in range(2500)]
    calls += [Call("f", b"json:[[],{}]", key=f"k{i}") for i in range(10)]
    calls += [Call("f", b"json:[[],{}]", key="k0")]
    executions = docket.enqueue_many(calls)
    assert len(executions) == 2511
    assert [e.added for e in executions[-11:]] == [True] * 10 + [False]
    assert docket.redis.xlen(docket.keys("default").stream) == 2510


def test_payload_above_limit_is_refused(broker_url: str, prefix: str) -> None:
    d = Docket(broker_url, prefix=prefix, max_payload_bytes=1000)
    with pytest.raises(PayloadTooLarge) as info:
        d.enqueue(Call("f", b"x" * 1001))
    assert info.value.size == 1001 and info.value.limit == 1000
    assert d.redis.xlen(d.keys("default").stream) == 0


def test_named_queues_are_separate(docket: Docket) -> None:
    seen: list[str] = []

    @docket.task(name="a", queue="alpha")
    def a() -> None:
        seen.append("alpha")

    @docket.task(name="b", queue="beta")
    def b() -> None:
        seen.append("beta")

    docket.add("a")()
    docket.add("b")()
    with running(docket.worker(pool="solo", queues=["alpha"])):
        deadline = time.time() + 5
        while not seen and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
    assert seen == ["alpha"]
    assert docket.redis.xlen(docket.keys("beta").stream) == 1
    assert sorted(docket.queues()) == ["alpha", "beta"]


def test_bad_messages_are_dead_lettered_and_batch_mates_run(docket: Docket) -> None:
    docket.task(add)
    stream = docket.keys("default").stream
    docket.add(add)(1, 1)
    docket.redis.xadd(stream, {"garbage": "1"})  # no id, no function
    docket.add("nobody.registered" if False else add)(1)  # does not bind
    docket.redis.xadd(stream, {"i": "u1", "n": "nobody.registered", "b": "json:[[],{}]"})
    docket.redis.xadd(stream, {"i": "u2", "n": "tests.test_engine_basics.add", "b": "json:{bad"})
    good = docket.add(add)(2, 2)
    with running(docket.worker(pool="solo", prefetch=16)):
        assert docket.result(good.id, timeout=10) == 4
        deadline = time.time() + 5
        while docket.redis.xlen(docket.keys("default").dead) < 4 and time.time() < deadline:
            time.sleep(0.02)
    dead = docket.redis.xrange(docket.keys("default").dead)
    reasons = sorted(f[b"r"].decode() for _mid, f in dead)
    assert len(reasons) == 4
    assert any("malformed entry" in r for r in reasons)
    assert any("unknown function 'nobody.registered'" in r for r in reasons)
    assert any("arguments do not fit" in r for r in reasons)
    assert any("cannot decode json" in r for r in reasons)
    assert docket.redis.xlen(stream) == 0
    assert not docket.redis.xpending(stream, "workers")["pending"]


def test_pickle_is_refused_unless_accepted(docket: Docket, tmp_path) -> None:
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    docket.task(add)
    stream = docket.keys("default").stream
    body = b"pickle:" + pickle.dumps([[Evil()], {}])
    docket.redis.xadd(stream, {"i": "evil", "n": "tests.test_engine_basics.add", "b": body})
    good = docket.add(add)(1, 2)
    with running(docket.worker(pool="solo")):
        assert docket.result(good.id, timeout=10) == 3
        deadline = time.time() + 5
        while not docket.redis.xlen(docket.keys("default").dead) and time.time() < deadline:
            time.sleep(0.02)
    assert not marker.exists()
    ((_mid, fields),) = docket.redis.xrange(docket.keys("default").dead)
    assert b"not accepted" in fields[b"r"]


def test_perpetual_reschedules_itself_and_survives_failure(docket: Docket) -> None:
    runs: list[float] = []

    @docket.task(name="tick", perpetual=Perpetual(every=timedelta(milliseconds=100)))
    def tick() -> None:
        runs.append(time.time())
        if len(runs) == 2:
            raise RuntimeError("a failing run must not end the perpetual")

    with running(docket.worker(pool="threads", concurrency=2)):
        deadline = time.time() + 10
        while len(runs) < 5 and time.time() < deadline:
            time.sleep(0.02)
    assert len(runs) >= 5
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert min(gaps) >= 0.09  # never two at once
    record = docket.execution_record("tick")
    assert record["s"] in ("parked", "queued")


def test_two_workers_run_a_perpetual_once_per_tick(docket: Docket) -> None:
    runs: list[float] = []

    @docket.task(name="tick2", perpetual=Perpetual(every=timedelta(milliseconds=200)))
    def tick2() -> None:
        runs.append(time.time())

    with (
        running(docket.worker(pool="solo", name="w1")),
        running(docket.worker(pool="solo", name="w2")),
    ):
        time.sleep(1.5)
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert 5 <= len(runs) <= 9
    assert min(gaps) >= 0.19


def test_result_wait_times_out(docket: Docket) -> None:
    t0 = time.monotonic()
    with pytest.raises(ResultTimeout):
        docket.results.wait("never", timeout=0.3)
    assert 0.25 <= time.monotonic() - t0 < 2.0


def test_retry_via_again_outcome_keeps_execution_id(docket: Docket) -> None:
    from celery_docket.engine import Outcome, ResultWrite, Worker, WorkerSettings

    attempts: list[int] = []

    def handler(d):
        attempts.append(d.attempt)
        if d.attempt < 3:
            return Outcome.again(int(time.time() * 1000) + 50, attempt=d.attempt + 1)
        return Outcome.done(ResultWrite(docket.results.key(d.execution_id), b"ok", 60_000))

    e = docket.enqueue(Call("f", b"json:[[],{}]", key="retry-me"))
    with running(Worker(docket, handler, WorkerSettings(pool="solo"))):
        assert docket.results.wait(e.id, timeout=10) == b"ok"
    assert attempts == [1, 2, 3]
    assert docket.execution_record("retry-me") == {}


def test_async_functions_run_on_the_worker_loop(docket: Docket) -> None:
    import asyncio

    @docket.task(name="coro")
    async def coro(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 2

    with running(docket.worker(pool="threads", concurrency=2)):
        e = docket.add("coro")(21)
        assert docket.result(e.id, timeout=10) == 42


def test_sigterm_style_stop_hands_back_unstarted_work(docket: Docket) -> None:
    started: list[int] = []

    @docket.task(name="slow")
    def slow(i: int) -> None:
        started.append(i)
        time.sleep(0.3)

    for i in range(6):
        docket.add("slow")(i)
    worker = docket.worker(pool="solo", prefetch=6)
    with running(worker):
        deadline = time.time() + 5
        while not started and time.time() < deadline:
            time.sleep(0.01)
    # the first ran; the rest went back to the stream, none is stuck in the pending list
    stream = docket.keys("default").stream
    assert docket.redis.xpending(stream, "workers")["pending"] == 0
    assert docket.redis.xlen(stream) == 6 - len(started)
    with running(docket.worker(pool="threads", concurrency=6, name="second")):
        deadline = time.time() + 5
        while len(started) < 6 and time.time() < deadline:
            time.sleep(0.02)
    assert sorted(started) == list(range(6))


@pytest.mark.redis
def test_pool_exhaustion_is_back_pressure_not_an_outage(redis_server_url: str, prefix: str) -> None:
    """60 threads sharing 6 connections: every task completes, nothing waits for a lease."""
    d = Docket(redis_server_url, prefix=prefix, max_connections=6)

    @d.task(name="uses_redis")
    def uses_redis(i: int) -> int:
        d.redis.incr(f"{prefix}:counter")
        time.sleep(0.01)
        return i

    executions = [d.add("uses_redis")(i) for i in range(300)]
    t0 = time.monotonic()
    with running(d.worker(pool="threads", concurrency=60, lease_seconds=30)):
        values = [d.result(e.id, timeout=30) for e in executions]
    assert values == list(range(300))
    assert int(d.redis.get(f"{prefix}:counter")) == 300
    assert time.monotonic() - t0 < 20  # far below the 30 s lease: nothing was stranded
    stream = d.keys("default").stream
    assert d.redis.xpending(stream, "workers")["pending"] == 0
    d.close()


@pytest.mark.redis
def test_redis_out_of_memory_is_a_typed_error(redis_server_url: str, prefix: str) -> None:
    """With maxmemory + noeviction, a full Redis refuses adds with BrokerFull (no eviction)."""
    from celery_docket.engine import BrokerFull
    from tests.redis_server import RedisServer

    server = RedisServer(extra=["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]).start()
    try:
        d = Docket(server.url, prefix=prefix)
        body = b"json:" + b"x" * 20_000
        with pytest.raises(BrokerFull):
            for _ in range(1000):
                d.enqueue(Call("f", body))
        kept = d.redis.xlen(d.keys("default").stream)
        assert kept > 0  # what was accepted before is still there: nothing evicted
        d.close()
    finally:
        server.stop()
