"""Task options whose effect users rely on: ignore_result, track_started, hooks, retry options."""

from __future__ import annotations

import threading
import time

TIMEOUT = 10


def _wait_until(predicate, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_ignored_result_stays_pending_with_track_started(system) -> None:
    """With task_track_started, a task whose result is ignored stays PENDING (no STARTED)"""
    app = system.make_app(task_track_started=True)
    done = threading.Event()

    @app.task(name="compat.ignored_tracked", ignore_result=True)
    def ignored():
        done.set()
        return 1

    with system.worker(app):
        r = ignored.delay()
        assert done.wait(TIMEOUT)
        time.sleep(0.3)
        assert app.AsyncResult(r.id).state == "PENDING"
        assert r.get(timeout=1) is None  # an ignored result's get() returns at once


def test_task_ignore_result_false_wins_over_global_setting(system) -> None:
    """A task declared ignore_result=False stores its result under task_ignore_result=True"""
    app = system.make_app(task_ignore_result=True)

    @app.task(name="compat.kept", ignore_result=False)
    def kept(x):
        return x * 2

    @app.task(name="compat.dropped")
    def dropped(x):
        return x

    with system.worker(app):
        assert kept.delay(21).get(timeout=TIMEOUT) == 42
        assert dropped.ignore_result is True and kept.ignore_result is False
        r = dropped.delay(1)
        assert r.get(timeout=1) is None
        time.sleep(0.3)
        assert app.AsyncResult(r.id).state == "PENDING"


def test_after_return_skipped_for_retry(system) -> None:
    """after_return runs for SUCCESS and FAILURE but not for RETRY"""
    app = system.make_app()
    seen: list[str] = []

    class Recording(system.Task):
        def after_return(self, status, retval, task_id, args, kwargs, einfo):
            seen.append(status)

    @app.task(name="compat.retry_then_ok", bind=True, base=Recording, max_retries=2)
    def flaky(self):
        if self.request.retries < 1:
            raise self.retry(countdown=0.01)
        return "ok"

    @app.task(name="compat.always_fails", base=Recording)
    def fails():
        raise ValueError("no")

    with system.worker(app):
        assert flaky.delay().get(timeout=TIMEOUT) == "ok"
        r = fails.delay()
        r.get(timeout=TIMEOUT, propagate=False)
        _wait_until(lambda: len(seen) >= 2)
    assert seen == ["SUCCESS", "FAILURE"]


def test_retry_keeps_priority_headers_and_switches_arguments(system) -> None:
    """self.retry keeps the message's priority and custom headers and merges new args like Celery"""
    app = system.make_app()

    @app.task(name="compat.retry_opts", bind=True, max_retries=1)
    def retried(self, foo, bar, label=None):
        if not self.request.retries:
            raise self.retry(args=(foo + 1, bar + 1), countdown=0.01)
        return {
            "foo": foo,
            "bar": bar,
            "label": label,
            "priority": self.request.delivery_info.get("priority"),
            "header": (self.request.headers or {}).get("x-test"),
        }

    with system.worker(app):
        got = retried.apply_async(
            kwargs={"foo": 1, "bar": 2, "label": "kept"}, priority=5, headers={"x-test": "v"}
        ).get(timeout=TIMEOUT)
    assert got == {"foo": 2, "bar": 3, "label": "kept", "priority": 5, "header": "v"}


def test_reject_without_requeue_stores_failure(system) -> None:
    """Reject(requeue=False) stores FAILURE with the Reject (requeue=True: Celery's own suite)"""
    app = system.make_app()

    @app.task(name="compat.reject_for_good")
    def reject_for_good():
        raise system.exceptions.Reject("no", requeue=False)

    with system.worker(app):
        r = reject_for_good.delay()
        try:
            r.get(timeout=TIMEOUT)
        except system.exceptions.Reject:
            pass
        assert r.state == "FAILURE"
        assert type(r.result).__name__ == "Reject"


def test_rate_limit_spaces_runs(system) -> None:
    """rate_limit="10/s" on one worker: runs start at least 100 ms apart, none is dropped"""
    app = system.make_app()
    starts: list[float] = []

    @app.task(name="compat.limited", rate_limit="10/s")
    def limited(i):
        starts.append(time.monotonic())
        return i

    with system.worker(app):
        results = [limited.delay(i) for i in range(6)]
        assert sorted(r.get(timeout=TIMEOUT) for r in results) == list(range(6))
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.085, gaps
