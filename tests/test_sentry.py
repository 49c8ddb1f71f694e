"""Sentry with the real sentry-sdk: a recording transport, ``sentry_sdk.init`` as users write it
(default integrations, so sentry-sdk's own CeleryIntegration is auto-enabled: celery is
installed in the test environment) and an embedded worker."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celery_docket import Celery
from celery_docket.contrib import integrations
from celery_docket.worker import WorkController

sentry_sdk: Any = pytest.importorskip("sentry_sdk")
from sentry_sdk.transport import Transport  # noqa: E402

from celery_docket.contrib import sentry as our_sentry  # noqa: E402


class Recording(Transport):
    """Keeps every envelope instead of sending it."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.envelopes.append(envelope)

    def errors(self) -> list[dict[str, Any]]:
        events = [e.get_event() for e in self.envelopes]
        return [e for e in events if e is not None and e.get("type") != "transaction"]

    def transactions(self) -> list[dict[str, Any]]:
        found = [e.get_transaction_event() for e in self.envelopes]
        return [t for t in found if t is not None]


@pytest.fixture
def transport() -> Iterator[Recording]:
    recording = Recording()
    sentry_sdk.init(dsn="http://public@127.0.0.1:1/1", transport=recording, traces_sample_rate=1.0)
    integrations.publish_pending = True  # this test's first publish looks again
    try:
        yield recording
    finally:
        our_sentry.uninstall()
        sentry_sdk.init()  # an inactive client: nothing else in the session reports
        integrations.publish_pending = True


@pytest.fixture
def app(broker_url: str, prefix: str) -> Iterator[Celery]:
    a = Celery(f"s{uuid.uuid4().hex[:6]}", broker=broker_url, set_as_current=False)
    a.conf.docket_key_prefix = prefix
    yield a
    a.close()


def _run(app: Celery, wait: Any) -> None:
    w = WorkController(app, pool="solo", setup_logging=False).start_in_thread()
    try:
        wait()
    finally:
        w.stop()
    sentry_sdk.flush()


def _until(cond: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_failing_task_is_one_event_tagged_like_sentrys_integration(
    app: Celery, transport: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(name="s.boom")
    def boom(x: int) -> None:
        raise ValueError(f"bad {x}")

    assert sentry_sdk.get_client().get_integration("celery") is not None  # auto-enabled
    caplog.set_level(logging.ERROR, logger="celery.app.trace")
    r = boom.delay(3)
    _run(app, lambda: _until(r.ready))
    errors = transport.errors()
    assert len(errors) == 1, errors
    event = errors[0]
    assert event["tags"]["celery_task_id"] == r.id
    assert event["tags"]["celery_task_name"] == "s.boom"
    assert event["extra"]["celery-job"]["task_name"] == "s.boom"
    exc = event["exception"]["values"][-1]
    assert exc["type"] == "ValueError" and exc["mechanism"] == {"type": "celery", "handled": False}
    # the failure is still logged where Celery logs it; Sentry ignores that line only
    assert any("raised unexpected" in rec.getMessage() for rec in caplog.records)
    (txn,) = transport.transactions()
    assert txn["transaction"] == "s.boom"
    assert txn["transaction_info"] == {"source": "task"}
    assert txn["contexts"]["trace"]["op"] == "queue.task.celery"
    assert txn["contexts"]["trace"]["origin"] == "auto.queue.celery"
    assert txn["contexts"]["trace"]["status"] == "internal_error"
    assert [s["op"] for s in txn["spans"] if s["op"].startswith("queue.")] == ["queue.process"]


def test_retries_are_no_events_and_each_run_is_a_transaction(
    app: Celery, transport: Recording
) -> None:
    @app.task(name="s.flaky", bind=True, max_retries=3)
    def flaky(self: Any) -> str:
        if self.request.retries < 2:
            raise self.retry(exc=KeyError("again"), countdown=0)
        return "ok"

    r = flaky.delay()
    _run(app, lambda: _until(r.ready))
    assert r.get(timeout=5) == "ok"
    assert transport.errors() == []
    txns = transport.transactions()
    assert [t["transaction"] for t in txns] == ["s.flaky"] * 3
    assert [t["contexts"]["trace"]["status"] for t in txns] == ["aborted", "aborted", "ok"]


def test_expected_exceptions_in_throws_are_not_reported(app: Celery, transport: Recording) -> None:
    @app.task(name="s.expected", throws=(KeyError,))
    def expected() -> None:
        raise KeyError("known")

    r = expected.delay()
    _run(app, lambda: _until(r.ready))
    assert transport.errors() == []


def test_publish_in_a_transaction_propagates_the_trace(app: Celery, transport: Recording) -> None:
    seen: dict[str, Any] = {}

    @app.task(name="s.child", bind=True)
    def child(self: Any) -> None:
        seen.update(self.request.headers)

    with sentry_sdk.start_transaction(name="web-request", op="http.server") as web:
        r = child.delay()
    _run(app, lambda: _until(r.ready))
    assert seen["sentry-trace"].startswith(web.trace_id)
    assert "sentry-trace_id=" + web.trace_id in seen["baggage"]
    txns = {t["transaction"]: t for t in transport.transactions()}
    worker_trace = txns["s.child"]["contexts"]["trace"]
    assert worker_trace["trace_id"] == web.trace_id
    submit = [s for s in txns["web-request"]["spans"] if s["op"] == "queue.submit.celery"]
    assert len(submit) == 1 and submit[0]["description"] == "s.child"
    assert worker_trace["parent_span_id"] == submit[0]["span_id"]
    process = [s for s in txns["s.child"]["spans"] if s["op"] == "queue.process"][0]
    assert process["data"]["messaging.message.id"] == r.id
    assert process["data"]["messaging.message.receive.latency"] >= 0


def test_off_without_sentry_init(app: Celery) -> None:
    from celery_docket import signals

    sentry_sdk.init()  # no DSN: inactive
    integrations.publish_pending = True
    our_sentry.uninstall()

    @app.task(name="s.plain")
    def plain() -> int:
        return 1

    r = plain.delay()
    assert not any(k[0] == our_sentry._UID for k, _ in signals.task_prerun.receivers)
    _run(app, lambda: _until(r.ready))
    assert not any(k[0] == our_sentry._UID for k, _ in signals.task_prerun.receivers)


def test_one_event_without_sentrys_celery_integration(app: Celery) -> None:
    """celery not importable (or its integration disabled): our failure log line is still
    kept out of Sentry, so the logging integration does not make a second event."""
    from sentry_sdk.integrations.logging import _IGNORED_LOGGERS, LoggingIntegration

    recording = Recording()
    _IGNORED_LOGGERS.discard("celery.app.trace")  # as in a process that never had it
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:1/1",
        transport=recording,
        default_integrations=False,
        integrations=[LoggingIntegration()],
    )
    integrations.publish_pending = True
    try:
        assert sentry_sdk.get_client().get_integration("celery") is None

        @app.task(name="s.boom2")
        def boom2() -> None:
            raise RuntimeError("no celery integration")

        r = boom2.delay()
        _run(app, lambda: _until(r.ready))
        errors = recording.errors()
        assert len(errors) == 1
        assert errors[0]["exception"]["values"][-1]["mechanism"]["type"] == "celery"
    finally:
        our_sentry.uninstall()
        sentry_sdk.init()
        integrations.publish_pending = True
