"""The mover on a real Redis: parked work moves when due, never before, and an earlier entry
parked while the mover sleeps wakes it (the pub/sub notice), not its backstop timer.

Bounds are generous on purpose (a busy 2-core CI machine); each test is built so that the
behaviour it guards would miss its bound by far more than scheduling noise.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from celery_docket.engine import Docket, Worker, WorkerSettings
from celery_docket.engine.messages import Call, Delivery, Outcome
from tests.engine_helpers import running

pytestmark = pytest.mark.redis


class Starts:
    """Handler recording when each execution's body started (wall clock)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.message_ms: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, d: Delivery) -> Outcome:
        started = time.time()
        with self._lock:
            self.at[d.execution_id] = started
            self.message_ms[d.execution_id] = int(d.message_id.split("-")[0])
        return Outcome.done()

    def wait_for(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.at) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.at) >= n, f"{len(self.at)} of {n} ran within {timeout}s"


def wall_minus_monotonic() -> float:
    """``time.time() - time.monotonic()``, from the tightest of a few samples (a preemption
    between the two reads must not count)."""
    samples = []
    for _ in range(20):
        before = time.monotonic()
        wall = time.time()
        after = time.monotonic()
        samples.append((after - before, wall - (before + after) / 2))
    return min(samples)[1]


def test_an_earlier_entry_parked_while_the_mover_sleeps_wakes_it(
    redis_server_url: str, prefix: str
) -> None:
    """With a 60 s backstop, only the notice can move the new head in time."""
    d = Docket(redis_server_url, prefix=prefix)
    starts = Starts()
    worker = Worker(d, starts, WorkerSettings(pool="solo", move_idle_seconds=60.0))
    with running(worker):
        d.enqueue(Call("f", b"json:[]", when=time.time() + 3600))  # the mover sleeps on it
        time.sleep(0.3)
        for delay in (0.5, 0.3, 0.1):  # each a new, earlier head
            d.enqueue(Call("f", b"json:[]", when=time.time() + delay))
            time.sleep(0.05)
        parked = d.enqueue(Call("f", b"json:[]", when=time.time() + 0.2))
        starts.wait_for(4, timeout=10)
    assert parked.when_ms is not None
    assert starts.at[parked.id] - parked.when_ms / 1000 < 5.0  # the backstop would be 60 s


def test_parked_work_never_starts_early(redis_server_url: str, prefix: str) -> None:
    """Random countdowns, some parked ahead of the head, some behind, some due at once:
    every entry reaches the stream (Redis's clock) and its handler (the wall clock, the
    same here) at or after its due time, and none waits for the backstop."""
    d = Docket(redis_server_url, prefix=prefix)
    starts = Starts()
    rng = random.Random(14)
    delays = [rng.choice([0.0, 0.001, 0.002]) + rng.random() * 0.4 for _ in range(60)]
    worker = Worker(d, starts, WorkerSettings(pool="solo", move_idle_seconds=60.0))
    parked = []
    with running(worker):
        for delay in delays:
            parked.append(d.enqueue(Call("f", b"json:[]", when=time.time() + delay)))
            if rng.random() < 0.3:
                time.sleep(rng.random() * 0.01)
        starts.wait_for(len(parked), timeout=20)
    for e in parked:
        assert e.when_ms is not None
        assert starts.message_ms[e.id] >= e.when_ms, "moved before its due time"
        assert starts.at[e.id] * 1000 >= e.when_ms, "started before its due time"
        assert starts.at[e.id] * 1000 - e.when_ms < 5000


def test_the_mover_wakes_at_the_head_not_a_rounded_millisecond_later(
    redis_server_url: str, prefix: str
) -> None:
    """``_move_due`` returns the head's due time (on the monotonic clock), through an offset to
    Redis's clock measured to the microsecond: off by at most half a round trip (this
    redis-server runs on this host, so both clocks are one), where rounding Redis's now to
    the millisecond would oversleep by up to a millisecond."""
    d = Docket(redis_server_url, prefix=prefix)
    worker = Worker(d, Starts(), WorkerSettings(pool="solo"))
    d.ensure_group("default")
    e = d.enqueue(Call("f", b"json:[]", when=time.time() + 0.5))
    assert e.when_ms is not None
    for _ in range(20):
        before = time.time()
        deadline = worker._move_due()
        wake_at = wall_minus_monotonic() + deadline  # on the wall clock
        round_trip_ms = (time.time() - before) * 1000
        assert abs(wake_at * 1000 - e.when_ms) <= round_trip_ms / 2 + 0.05
    d.close()


def test_a_worker_of_several_queues_moves_each_queues_parked_work(
    redis_server_url: str, prefix: str
) -> None:
    """One queue moves with a direct call, several in one pipeline: both paths move."""
    d = Docket(redis_server_url, prefix=prefix)
    starts = Starts()
    worker = Worker(d, starts, WorkerSettings(queues=["a", "b"], pool="solo"))
    with running(worker):
        parked = [d.enqueue(Call("f", b"json:[]", queue=q, when=time.time() + 0.2)) for q in "ab"]
        starts.wait_for(2, timeout=10)
    for e in parked:
        assert e.when_ms is not None and starts.at[e.id] * 1000 >= e.when_ms


def test_the_mover_sleeps_at_most_its_backstop_on_the_monotonic_clock(
    redis_server_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing parked: the wake-up is ``move_idle_seconds`` away on the monotonic clock, even
    after the wall clock stepped back an hour (the sleep must not follow it)."""
    d = Docket(redis_server_url, prefix=prefix)
    worker = Worker(d, Starts(), WorkerSettings(pool="solo", move_idle_seconds=0.5))
    d.ensure_group("default")
    before = time.monotonic()
    deadline = worker._move_due()
    assert before + 0.5 - 0.01 <= deadline <= time.monotonic() + 0.5
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)
    assert worker._move_due() <= time.monotonic() + 0.5
    d.close()
