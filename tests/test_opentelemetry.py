"""OpenTelemetry with the real opentelemetry-instrumentation-celery: users' own
``CeleryInstrumentor().instrument()`` line, spans collected by the SDK's InMemorySpanExporter."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from celery_docket import Celery
from celery_docket.contrib import integrations
from celery_docket.worker import WorkController

pytest.importorskip("opentelemetry.sdk")
instrumentation: Any = pytest.importorskip("opentelemetry.instrumentation.celery")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from celery_docket.contrib import opentelemetry as our_otel  # noqa: E402


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentation.CeleryInstrumentor().instrument(tracer_provider=provider)
    integrations.publish_pending = True
    try:
        yield exporter
    finally:
        instrumentation.CeleryInstrumentor().uninstrument()
        integrations.publish_pending = True


@pytest.fixture
def app(broker_url: str, prefix: str) -> Iterator[Celery]:
    a = Celery(f"o{uuid.uuid4().hex[:6]}", broker=broker_url, set_as_current=False)
    a.conf.docket_key_prefix = prefix
    yield a
    a.close()


def _run(app: Celery, result: Any) -> None:
    w = WorkController(app, pool="solo", setup_logging=False).start_in_thread()
    try:
        end = time.monotonic() + 10
        while not result.ready():
            assert time.monotonic() < end
            time.sleep(0.02)
    finally:
        w.stop()


def _by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    spans: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        spans.setdefault(span.name, []).append(span)
    return spans


def test_producer_and_consumer_spans_in_one_trace(
    app: Celery, exporter: InMemorySpanExporter
) -> None:
    @app.task(name="o.add")
    def add(x: int, y: int) -> int:
        return x + y

    r = add.delay(2, 3)
    _run(app, r)
    assert r.get(timeout=5) == 5
    spans = _by_name(exporter)
    (producer,) = spans["apply_async/o.add"]
    (consumer,) = spans["run/o.add"]
    assert producer.kind == SpanKind.PRODUCER and consumer.kind == SpanKind.CONSUMER
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert producer.attributes["celery.action"] == "apply_async"
    assert producer.attributes["celery.task_name"] == "o.add"
    assert producer.attributes["messaging.message.id"] == r.id
    assert producer.attributes["messaging.destination"] == "celery"
    attrs = consumer.attributes
    assert attrs["celery.action"] == "run"
    assert attrs["celery.state"] == "SUCCESS"
    assert attrs["celery.task_name"] == "o.add"
    assert attrs["messaging.message.id"] == r.id
    assert attrs["messaging.destination"] == "celery"
    assert attrs["celery.hostname"]
    assert consumer.status.status_code == StatusCode.UNSET


def test_failure_and_retry(app: Celery, exporter: InMemorySpanExporter) -> None:
    @app.task(name="o.flaky", bind=True, max_retries=1)
    def flaky(self: Any) -> None:
        if self.request.retries == 0:
            raise self.retry(exc=KeyError("once more"), countdown=0)
        raise ValueError("broken")

    r = flaky.delay()
    _run(app, r)
    first, second = sorted(_by_name(exporter)["run/o.flaky"], key=lambda s: s.start_time)
    assert "once more" in first.attributes["celery.retry.reason"]
    assert second.status.status_code == StatusCode.ERROR
    assert second.status.description == "broken"
    assert second.events[0].name == "exception"
    assert second.attributes["celery.retries"] == 1
    assert second.attributes["celery.state"] == "FAILURE"


def test_uninstrument_disconnects(app: Celery, exporter: InMemorySpanExporter) -> None:
    from celery_docket import signals

    def ours() -> bool:
        return any(k[0] == our_otel._UID for k, _ in signals.task_prerun.receivers)

    assert ours()
    instrumentation.CeleryInstrumentor().uninstrument()
    assert not ours()
    instrumentation.CeleryInstrumentor().instrument()  # the fixture's teardown undoes it
    assert ours()
