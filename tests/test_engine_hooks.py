"""The lifecycle seam (engine/hooks.py): each point fires once, in order, on both backends;
points nobody overrides stay empty tuples; a failing hook is logged, never fatal."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from celery_docket.engine import (
    Call,
    Delivery,
    Docket,
    Execution,
    Hook,
    Hooks,
    Outcome,
    Worker,
    WorkerSettings,
)
from celery_docket.engine.hooks import POINTS, WorkerView
from tests.engine_helpers import running


@pytest.fixture
def docket(broker_url: str, prefix: str) -> Iterator[Docket]:
    d = Docket(broker_url, prefix=prefix)
    yield d
    d.close()


class Recorder(Hook):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def _add(self, point: str, what: str) -> None:
        with self.lock:
            self.events.append((point, what))

    def before_enqueue(self, call: Call) -> None:
        self._add("before_enqueue", call.execution_id or "")

    def after_enqueue(self, call: Call, execution: Execution) -> None:
        self._add("after_enqueue", execution.id)

    def on_worker_start(self, worker: WorkerView) -> None:
        self._add("on_worker_start", worker.node)

    def before_run(self, worker: WorkerView, delivery: Delivery) -> None:
        self._add("before_run", f"{delivery.execution_id}:{delivery.attempt}")

    def after_run(self, worker: WorkerView, delivery: Delivery, outcome: Outcome) -> None:
        self._add("after_run", f"{delivery.execution_id}:{outcome.action}")

    def after_commit(
        self, worker: WorkerView, delivery: Delivery, outcome: Outcome, committed: bool
    ) -> None:
        self._add("after_commit", f"{delivery.execution_id}:{outcome.action}:{committed}")

    def after_retry(self, worker: WorkerView, delivery: Delivery, outcome: Outcome) -> None:
        self._add("after_retry", delivery.execution_id)

    def after_dead_letter(self, worker: WorkerView, delivery: Delivery, outcome: Outcome) -> None:
        self._add("after_dead_letter", f"{delivery.execution_id}:{outcome.reason}")

    def on_worker_stop(self, worker: WorkerView) -> None:
        self._add("on_worker_stop", worker.node)
        self.stopped.set()

    def of(self, execution_id: str) -> list[str]:
        with self.lock:
            return [p for p, what in self.events if what.split(":")[0] == execution_id]


def test_a_point_nobody_overrides_is_an_empty_tuple() -> None:
    class OnlyCommits(Hook):
        def after_commit(
            self, worker: WorkerView, delivery: Delivery, outcome: Outcome, committed: bool
        ) -> None:
            pass

    hooks = Hooks([OnlyCommits()])
    assert len(hooks.after_commit) == 1
    assert [p for p in POINTS if getattr(hooks, p)] == ["after_commit"]
    assert all(getattr(Hooks(), p) == () for p in POINTS)
    hooks.add(Recorder())
    assert all(getattr(hooks, p) for p in POINTS)
    assert len(hooks.after_commit) == 2 and len(hooks) == 2


def test_every_point_fires_in_order(docket: Docket) -> None:
    recorder = Recorder()
    docket.hooks.add(recorder)
    seen: list[int] = []

    def handler(d: Delivery) -> Outcome:
        seen.append(d.attempt)
        if d.execution_id == "flaky" and d.attempt == 1:
            return Outcome.again(None, attempt=2)
        if d.execution_id == "bad":
            return Outcome.dead("refused")
        return Outcome.done()

    for eid in ("ok", "flaky", "bad"):
        docket.enqueue(Call("f", b"x", execution_id=eid))
    worker = Worker(docket, handler, WorkerSettings(pool="solo", name="w"), hooks=[recorder])
    with running(worker):
        deadline = time.monotonic() + 10
        while len(recorder.of("bad")) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        while len(recorder.of("flaky")) < 9 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert recorder.stopped.wait(5)
    run = ["before_run", "after_run", "after_commit"]
    assert recorder.of("ok") == ["before_enqueue", "after_enqueue", *run]
    flaky = recorder.of("flaky")
    # the retry is back in the stream when COMPLETE returns: its second run may start on the
    # reader before the committer thread has fired the first commit's hooks
    assert flaky[:4] == ["before_enqueue", "after_enqueue", "before_run", "after_run"]
    assert sorted(flaky[4:]) == sorted([*run, "after_commit", "after_retry"])
    assert flaky.index("after_commit") < flaky.index("after_retry")
    assert recorder.of("bad") == ["before_enqueue", "after_enqueue", *run, "after_dead_letter"]
    points = [p for p, _w in recorder.events]
    assert points.index("on_worker_start") < points.index("before_run")
    assert points[-1] == "on_worker_stop"
    assert ("after_dead_letter", "bad:refused") in recorder.events
    assert ("after_commit", "flaky:again:True") in recorder.events


def test_a_failing_hook_is_logged_and_the_outcome_still_commits(
    docket: Docket, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Hook):
        def after_commit(
            self, worker: WorkerView, delivery: Delivery, outcome: Outcome, committed: bool
        ) -> None:
            raise RuntimeError("hook bug")

    done = threading.Event()

    class Watch(Hook):
        def after_commit(
            self, worker: WorkerView, delivery: Delivery, outcome: Outcome, committed: bool
        ) -> None:
            done.set()

    e = docket.enqueue(Call("f", b"x"))
    worker = Worker(
        docket, lambda d: Outcome.done(), WorkerSettings(pool="solo"), hooks=[Broken(), Watch()]
    )
    with caplog.at_level(logging.ERROR, "celery_docket.engine.hooks"), running(worker):
        assert done.wait(10)
    assert "after_commit hook" in caplog.text and "hook bug" in caplog.text
    stream = docket.keys("default").stream
    assert docket.redis.xlen(stream) == 0, f"{e.id} was not acked"


def test_a_failing_before_run_dead_letters_the_delivery(docket: Docket) -> None:
    ran: list[str] = []
    dead = threading.Event()

    class Refuse(Hook):
        def before_run(self, worker: WorkerView, delivery: Delivery) -> None:
            raise RuntimeError("not now")

        def after_dead_letter(
            self, worker: WorkerView, delivery: Delivery, outcome: Outcome
        ) -> None:
            ran.append(outcome.reason)
            dead.set()

    docket.enqueue(Call("f", b"x"))
    worker = Worker(docket, lambda d: ran.append("handler") or Outcome.done(), hooks=[Refuse()])
    with running(worker):
        assert dead.wait(10)
    assert ran == ["handler crashed: RuntimeError('not now')"]
    assert docket.redis.xlen(docket.keys("default").dead) == 1
