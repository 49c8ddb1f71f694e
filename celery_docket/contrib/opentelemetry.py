"""OpenTelemetry tracing of celery_docket tasks, shaped as ``CeleryInstrumentor``'s spans.

opentelemetry-instrumentation-celery connects to real Celery's ``celery.signals``, which
a celery_docket app never sends, so ``CeleryInstrumentor().instrument()`` alone records
nothing. We keep that line working: :func:`follow_instrumentor` (run by
:mod:`celery_docket.contrib.integrations` at worker start-up, after
``worker_process_init``, and at the first publish) hooks the instrumentor's
``instrument``/``uninstrument`` so they also connect/disconnect the receivers below to
our signals, using the instrumentor's tracer (its ``tracer_provider``) and its
``use_span_links`` option. Without the celery package, call :func:`instrument` instead.

The spans are the instrumentor's: ``apply_async/<task>`` (PRODUCER) around the publish,
its context injected into the message headers, and ``run/<task>`` (CONSUMER), a child of
the extracted context (or linked to it with ``use_span_links``), with the same
``celery.*``/``messaging.*`` attributes, error status and recorded exception on failure,
and ``celery.retry.reason`` on retry.
"""

from __future__ import annotations

import sys
import threading
from timeit import default_timer
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import signals

__all__ = ("instrument", "uninstrument", "follow_instrumentor")

_UID = "celery_docket.contrib.opentelemetry"
_INSTRUMENTOR_MODULE = "opentelemetry.instrumentation.celery"
_SCHEMA = "https://opentelemetry.io/schemas/1.11.0"

# Celery context fields the instrumentor copies onto its spans, in its order
_CONTEXT_KEYS = (
    "compression",
    "correlation_id",
    "countdown",
    "delivery_info",
    "eta",
    "exchange",
    "expires",
    "hostname",
    "id",
    "priority",
    "queue",
    "reply_to",
    "retries",
    "routing_key",
    "serializer",
    "timelimit",
    "origin",
    "state",
)
_RENAMED = {
    "origin": "celery.hostname",
    "id": "messaging.message.id",
    "correlation_id": "messaging.conversation_id",
    "routing_key": "messaging.destination",
}


class _Tracing:
    """What the receivers need: the tracer, the option, the runtime histogram."""

    def __init__(self, tracer: Any, use_span_links: bool, histogram: Any) -> None:
        self.tracer = tracer
        self.use_span_links = use_span_links
        self.histogram = histogram
        self.local = threading.local()  # stack of running tasks' (span, activation, token, t0)
        self.publishing: dict[str, Any] = {}  # task id -> activation until published

    def stack(self) -> list[Any]:
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
        return stack


_tracing: _Tracing | None = None


def instrument(
    tracer_provider: Any = None, meter_provider: Any = None, use_span_links: bool = False
) -> None:
    """Trace our tasks without the instrumentor package (e.g. no celery installed)."""
    from opentelemetry.metrics import get_meter

    from .. import __version__

    tracer = trace.get_tracer(__name__, __version__, tracer_provider, schema_url=_SCHEMA)
    meter = get_meter(__name__, __version__, meter_provider, schema_url=_SCHEMA)
    histogram = meter.create_histogram(
        name="flower.task.runtime.seconds",
        unit="seconds",
        description="The time it took to run the task.",
    )
    _connect(_Tracing(tracer, use_span_links, histogram))


def uninstrument() -> None:
    """Disconnect the receivers."""
    global _tracing
    for sig, receiver in _RECEIVERS:
        sig.disconnect(receiver, dispatch_uid=_UID)
    _tracing = None


def _connect(tracing: _Tracing) -> None:
    global _tracing
    _tracing = tracing
    for sig, receiver in _RECEIVERS:
        sig.connect(receiver, weak=False, dispatch_uid=_UID)


def follow_instrumentor() -> bool:
    """Make ``CeleryInstrumentor().instrument()``/``uninstrument()`` drive our receivers;
    True when it is instrumented now. Needs the instrumentor module already imported."""
    module = sys.modules.get(_INSTRUMENTOR_MODULE)
    if module is None:
        return False
    cls = module.CeleryInstrumentor
    if not getattr(cls, "_celery_docket_followed", False):
        original_instrument, original_uninstrument = cls._instrument, cls._uninstrument

        def _instrument(self: Any, **kwargs: Any) -> None:
            original_instrument(self, **kwargs)
            _follow(self, kwargs.get("use_span_links", False))

        def _uninstrument(self: Any, **kwargs: Any) -> None:
            original_uninstrument(self, **kwargs)
            uninstrument()

        cls._instrument, cls._uninstrument = _instrument, _uninstrument
        cls._celery_docket_followed = True
    instrumentor = cls()  # a singleton
    if instrumentor.is_instrumented_by_opentelemetry and _tracing is None:
        _follow(instrumentor, getattr(instrumentor, "_use_span_links", False))
    return _tracing is not None


def _follow(instrumentor: Any, use_span_links: bool) -> None:
    tracer = getattr(instrumentor, "_tracer", None) or trace.get_tracer(_INSTRUMENTOR_MODULE)
    histogram = (getattr(instrumentor, "metrics", None) or {}).get("flower.task.runtime.seconds")
    _connect(_Tracing(tracer, bool(use_span_links), histogram))


def _set_context_attributes(span: Any, get: Any) -> None:
    """The instrumentor's ``set_attributes_from_context``, for a mapping-like ``get``."""
    for key in _CONTEXT_KEYS:
        value = get(key)
        if value is None or value == "":
            continue
        if key == "timelimit":
            if all(v is None for v in value):
                continue
            if None in value:
                value = ["" if v is None else str(v) for v in value]
            else:
                value = list(value)
        if key == "retries" and value == 0:
            continue
        if key == "delivery_info":
            if value.get("routing_key") is not None:
                span.set_attribute("messaging.destination", value["routing_key"])
            value = str(value)
        span.set_attribute(_RENAMED.get(key, f"celery.{key}"), value)


# -- producer ----------------------------------------------------------------------------


def _before_publish(sender: Any = None, headers: Any = None, **kw: Any) -> None:
    tracing = _tracing
    if tracing is None or not headers or headers.get("id") is None:
        return
    task_id, name = headers["id"], str(sender or headers.get("task"))
    span = tracing.tracer.start_span(f"apply_async/{name}", kind=SpanKind.PRODUCER)
    if span.is_recording():
        span.set_attribute("celery.action", "apply_async")
        span.set_attribute("messaging.message.id", task_id)
        span.set_attribute("celery.task_name", name)
        _set_context_attributes(span, kw.get)
    activation = trace.use_span(span, end_on_exit=True)
    activation.__enter__()
    old = tracing.publishing.pop(task_id, None)
    if old is not None:
        old.__exit__(None, None, None)
    tracing.publishing[task_id] = activation
    inject(headers)


def _after_publish(headers: Any = None, **kw: Any) -> None:
    tracing = _tracing
    if tracing is None or not headers:
        return
    activation = tracing.publishing.pop(headers.get("id"), None)
    if activation is not None:
        activation.__exit__(None, None, None)


# -- consumer ----------------------------------------------------------------------------


def _prerun(task: Any = None, task_id: Any = None, **kw: Any) -> None:
    tracing = _tracing
    if tracing is None or task is None or task_id is None:
        return
    carrier = {k: v for k, v in (task.request.headers or {}).items() if isinstance(v, str)}
    ctx = extract(carrier) if carrier else None
    name = f"run/{task.name}"
    token = None
    if tracing.use_span_links and ctx is not None:
        parent = trace.get_current_span(ctx).get_span_context()
        links = [trace.Link(parent)] if parent.is_valid else None
        span = tracing.tracer.start_span(name, links=links, kind=SpanKind.CONSUMER)
    else:
        token = context_api.attach(ctx) if ctx is not None else None
        span = tracing.tracer.start_span(name, context=ctx, kind=SpanKind.CONSUMER)
    activation = trace.use_span(span, end_on_exit=True)
    activation.__enter__()
    tracing.stack().append((span, activation, token, default_timer()))


def _current(tracing: _Tracing | None) -> Any:
    if tracing is None:
        return None
    stack = tracing.stack()
    return stack[-1][0] if stack else None


def _postrun(task: Any = None, **kw: Any) -> None:
    tracing = _tracing
    if tracing is None or task is None:
        return
    stack = tracing.stack()
    if not stack:
        return
    span, activation, token, t0 = stack.pop()
    request = task.request
    if span.is_recording():
        span.set_attribute("celery.action", "run")
        _set_context_attributes(span, kw.get)
        _set_context_attributes(span, request.get)
        span.set_attribute("celery.task_name", task.name)
    activation.__exit__(None, None, None)
    if tracing.histogram is not None:
        attributes = {"task": task.name, "worker": request.hostname or ""}
        tracing.histogram.record(default_timer() - t0, attributes=attributes)
    if token is not None:
        context_api.detach(token)


def _failure(sender: Any = None, exception: Any = None, **kw: Any) -> None:
    span = _current(_tracing)
    if span is None or not span.is_recording():
        return
    throws = getattr(sender, "throws", None) or ()
    if exception is not None and throws and isinstance(exception, throws):
        return
    if exception is None:
        span.set_status(Status(StatusCode.ERROR))
        return
    span.record_exception(exception)
    span.set_status(Status(StatusCode.ERROR, str(exception)))


def _retry(reason: Any = None, **kw: Any) -> None:
    span = _current(_tracing)
    if span is not None and reason and span.is_recording():
        span.set_attribute("celery.retry.reason", str(reason))


_RECEIVERS = (
    (signals.before_task_publish, _before_publish),
    (signals.after_task_publish, _after_publish),
    (signals.task_prerun, _prerun),
    (signals.task_postrun, _postrun),
    (signals.task_failure, _failure),
    (signals.task_retry, _retry),
)
