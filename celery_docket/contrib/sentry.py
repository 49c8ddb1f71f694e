"""Sentry for celery_docket apps: what sentry-sdk's ``CeleryIntegration`` does for Celery.

sentry-sdk's integration patches real Celery (``build_tracer``, ``Task.apply_async``,
``kombu.Producer.publish``), none of which a celery_docket app runs, so on its own it
reports nothing for our tasks. This module gives the same result from our signals:

* each task runs in its own isolation scope and a transaction named after the task
  (source ``task``, op ``queue.task.celery``, origin ``auto.queue.celery``) that continues
  the producer's trace, with a ``queue.process`` span carrying the messaging data;
* a task failure is one error event (mechanism ``celery``, unhandled) tagged
  ``celery_task_id`` (and ``celery_task_name``), with ``extra["celery-job"]``; retries,
  ``Ignore``/``Reject`` and exceptions listed in ``Task.throws`` are not reported;
* ``apply_async``/``send_task`` inside a span add ``sentry-trace`` and ``baggage``
  headers (and ``sentry-task-enqueued-time`` for the receive latency) to the message.

It is switched on by :mod:`celery_docket.contrib.integrations` once
``sentry_sdk.init()`` has run (worker start-up or first publish), or by :func:`install`.

Failure logs: the real integration, auto-enabled whenever ``celery`` is importable, calls
``ignore_logger("celery.app.trace")``; that logger is where our worker (like Celery's)
logs ``Task ... raised unexpected``. The log line still reaches the process's handlers; it
is only kept out of Sentry, which is right once the failure is captured here directly (it
would otherwise be a second event). So we keep the logger ignored, and ignore it ourselves
when the real integration is absent, and capture every failure from ``task_failure``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sentry_sdk
from sentry_sdk.consts import OP, SPANDATA, SPANSTATUS
from sentry_sdk.integrations.logging import ignore_logger
from sentry_sdk.scope import should_send_default_pii
from sentry_sdk.tracing import BAGGAGE_HEADER_NAME, TransactionSource
from sentry_sdk.tracing_utils import Baggage
from sentry_sdk.utils import (  # type: ignore[attr-defined]
    SENSITIVE_DATA_SUBSTITUTE,
    capture_internal_exceptions,
)

from .. import signals
from ..exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded

ORIGIN = "auto.queue.celery"
ENQUEUED_HEADER = "sentry-task-enqueued-time"
_CONTROL_FLOW = (Retry, Ignore, Reject)
_UID = "celery_docket.contrib.sentry"

_installed = False
_local = threading.local()  # stack of the running tasks' (scope cm, transaction, span)
_publishing: dict[str, Any] = {}  # task id -> (submit span, publish span) until published


def install() -> bool:
    """Connect the receivers (idempotent); returns True."""
    global _installed
    if _installed:
        return True
    ignore_logger("celery.app.trace")  # failures are captured below, not from their log line
    ignore_logger("celery.worker.job")
    for sig, receiver in _RECEIVERS:
        sig.connect(receiver, weak=False, dispatch_uid=_UID)
    _installed = True
    return True


def uninstall() -> None:
    """Disconnect the receivers (the loggers stay ignored, as sentry-sdk leaves them)."""
    global _installed
    for sig, receiver in _RECEIVERS:
        sig.disconnect(receiver, dispatch_uid=_UID)
    _installed = False


def install_if_active() -> bool:
    """Install when ``sentry_sdk.init()`` has run with a DSN; True if installed."""
    if _installed:
        return True
    if not _on(sentry_sdk.get_client()):
        return False
    return install()


def _on(client: Any) -> bool:
    """Initialised and able to send (``init()`` without a DSN makes a client with no
    transport, which ``is_active()`` alone does not tell)."""
    return bool(client.is_active() and client.transport is not None)


def _integration_option(name: str, default: Any) -> Any:
    """An option of the user's ``CeleryIntegration(...)`` if one is configured."""
    integration = sentry_sdk.get_client().get_integration("celery")
    return getattr(integration, name, default) if integration is not None else default


def _now() -> float:
    return time.time()


# -- producer ----------------------------------------------------------------------------


def _before_publish(sender: Any = None, headers: Any = None, **kw: Any) -> None:
    """Open the submit/publish spans and put the trace headers on the message."""
    if headers is None or not _on(sentry_sdk.get_client()):
        return
    propagate = headers.pop("sentry-propagate-traces", None)
    if propagate is None:
        propagate = _integration_option("propagate_traces", True)
    if not propagate:
        return
    name = str(sender or headers.get("task") or "<unknown Celery task>")
    task_id = headers.get("id")
    with capture_internal_exceptions():
        from_beat = sentry_sdk.get_isolation_scope()._name == "celery-beat"
        submit = None
        if not from_beat:
            submit = sentry_sdk.start_span(op=OP.QUEUE_SUBMIT_CELERY, name=name, origin=ORIGIN)
            submit.__enter__()
        publish = sentry_sdk.start_span(op=OP.QUEUE_PUBLISH, name=name, origin=ORIGIN)
        if task_id is not None:
            publish.set_data(SPANDATA.MESSAGING_MESSAGE_ID, task_id)
        if kw.get("routing_key") is not None:
            publish.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, kw["routing_key"])
        if headers.get("retries") is not None:
            publish.set_data(SPANDATA.MESSAGING_MESSAGE_RETRY_COUNT, headers["retries"])
        publish.set_data(SPANDATA.MESSAGING_SYSTEM, "redis")
        trace = dict(sentry_sdk.get_isolation_scope().iter_trace_propagation_headers(span=submit))
        headers[ENQUEUED_HEADER] = _now()
        if trace:
            existing = headers.get(BAGGAGE_HEADER_NAME)
            if existing and trace.get(BAGGAGE_HEADER_NAME):
                trace[BAGGAGE_HEADER_NAME] = _merge_baggage(trace[BAGGAGE_HEADER_NAME], existing)
            headers.update(trace)
        if task_id is not None:
            old = _publishing.pop(task_id, None)
            if old is not None:
                _finish(old)
            if len(_publishing) > 10_000:  # publishes that raised never reach after_publish
                _publishing.clear()
            _publishing[task_id] = (submit, publish)
        else:
            _finish((submit, publish))


def _merge_baggage(sentry_value: str, existing: str) -> str:
    """Sentry's items win (as in sentry-sdk); the user's third-party items are kept."""
    ours = Baggage.from_incoming_header(sentry_value)
    theirs = Baggage.from_incoming_header(existing)
    ours.sentry_items.update(theirs.sentry_items)
    ours.third_party_items = ",".join(
        x for x in (ours.third_party_items, theirs.third_party_items) if x
    )
    return str(ours.serialize(include_third_party=True))


def _finish(spans: tuple[Any, Any]) -> None:
    submit, publish = spans
    with capture_internal_exceptions():
        publish.finish()
        if submit is not None:
            submit.__exit__(None, None, None)


def _after_publish(sender: Any = None, headers: Any = None, **kw: Any) -> None:
    if not headers:
        return
    spans = _publishing.pop(headers.get("id"), None)
    if spans is not None:
        _finish(spans)


# -- consumer ----------------------------------------------------------------------------


def _stack() -> list[Any]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _event_processor(task: Any, task_id: str, args: Any, kwargs: Any) -> Any:
    def process(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        with capture_internal_exceptions():
            tags = event.setdefault("tags", {})
            tags["celery_task_id"] = task_id
            tags["celery_task_name"] = task.name
            job: dict[str, Any] = {"task_name": task.name}
            if should_send_default_pii():
                job["args"], job["kwargs"] = args, kwargs
            else:
                job["args"] = job["kwargs"] = SENSITIVE_DATA_SUBSTITUTE
            event.setdefault("extra", {})["celery-job"] = job
            exc_info = hint.get("exc_info")
            if exc_info and issubclass(exc_info[0], SoftTimeLimitExceeded):
                event["fingerprint"] = ["celery", "SoftTimeLimitExceeded", task.name]
        return event

    return process


def _prerun(task: Any = None, task_id: Any = None, args: Any = None, **kw: Any) -> None:
    """Isolation scope, continued trace, transaction and ``queue.process`` span."""
    if task is None or not _on(sentry_sdk.get_client()):
        return
    kwargs = kw.get("kwargs")
    scope_cm = sentry_sdk.isolation_scope()
    scope = scope_cm.__enter__()
    entry: list[Any] = [scope_cm, None, None]
    _stack().append(entry)
    with capture_internal_exceptions():
        scope._name = "celery"
        scope.clear_breadcrumbs()
        scope.add_event_processor(_event_processor(task, task_id, args, kwargs))
        request = task.request
        headers = dict(request.headers or {})
        transaction = sentry_sdk.continue_trace(
            headers,
            op=OP.QUEUE_TASK_CELERY,
            name=task.name,
            source=TransactionSource.TASK,
            origin=ORIGIN,
        )
        transaction.set_status(SPANSTATUS.OK)
        sampling = {"celery_job": {"task": task.name, "args": list(args or ()), "kwargs": kwargs}}
        txn = sentry_sdk.start_transaction(transaction, custom_sampling_context=sampling)
        txn.__enter__()
        entry[1] = txn
        span = sentry_sdk.start_span(op=OP.QUEUE_PROCESS, name=task.name, origin=ORIGIN)
        span.__enter__()
        entry[2] = span
        delivery = request.delivery_info or {}
        if delivery.get("exchange") == "" and delivery.get("routing_key") is not None:
            span.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, delivery["routing_key"])
        enqueued = headers.get(ENQUEUED_HEADER)
        if isinstance(enqueued, (int, float)):
            latency_ms = (_now() - enqueued) * 1000
            span.set_data(SPANDATA.MESSAGING_MESSAGE_RECEIVE_LATENCY, latency_ms)
        span.set_data(SPANDATA.MESSAGING_MESSAGE_ID, task_id)
        span.set_data(SPANDATA.MESSAGING_MESSAGE_RETRY_COUNT, request.retries)
        span.set_data(SPANDATA.MESSAGING_SYSTEM, "redis")


def _set_status(status: str) -> None:
    """On the transaction: sentry-sdk sets it once the ``queue.process`` span has ended."""
    stack = _stack()
    if stack and stack[-1][1] is not None:
        stack[-1][1].set_status(status)


def _postrun(task: Any = None, **kw: Any) -> None:
    stack = _stack()
    if task is None or not stack:
        return
    scope_cm, txn, span = stack.pop()
    with capture_internal_exceptions():
        if span is not None:
            span.__exit__(None, None, None)
        if txn is not None:
            txn.__exit__(None, None, None)
    scope_cm.__exit__(None, None, None)


def _retry(**kw: Any) -> None:
    _set_status("aborted")


def _failure(sender: Any = None, task_id: Any = None, exception: Any = None, **kw: Any) -> None:
    """One error event per failed task, as sentry-sdk's ``_capture_exception``."""
    client = sentry_sdk.get_client()
    if exception is None or not _on(client):
        return
    if isinstance(exception, _CONTROL_FLOW):
        _set_status("aborted")
        return
    _set_status(SPANSTATUS.INTERNAL_ERROR)
    throws = getattr(sender, "throws", None) or ()
    if throws and isinstance(exception, throws):
        return
    exc_info = (type(exception), exception, kw.get("traceback") or exception.__traceback__)
    with capture_internal_exceptions():
        event, hint = sentry_sdk.utils.event_from_exception(
            exc_info,
            client_options=client.options,
            mechanism={"type": "celery", "handled": False},
        )
        if _stack():
            sentry_sdk.capture_event(event, hint=hint)
            return
        # failed outside the task's run (hard time limit, bad arguments): no task scope yet
        with sentry_sdk.isolation_scope() as scope:
            if sender is not None and hasattr(sender, "name"):
                args, kwargs = kw.get("args"), kw.get("kwargs")
                scope.add_event_processor(_event_processor(sender, task_id, args, kwargs))
            sentry_sdk.capture_event(event, hint=hint)


def _flush(**kw: Any) -> None:
    """Send what is queued before the process exits (sentry-sdk flushes pool children)."""
    with capture_internal_exceptions():
        if _on(sentry_sdk.get_client()):
            sentry_sdk.flush()


_RECEIVERS = (
    (signals.before_task_publish, _before_publish),
    (signals.after_task_publish, _after_publish),
    (signals.task_prerun, _prerun),
    (signals.task_postrun, _postrun),
    (signals.task_retry, _retry),
    (signals.task_failure, _failure),
    (signals.worker_process_shutdown, _flush),
    (signals.worker_shutdown, _flush),
)
