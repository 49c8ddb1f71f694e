"""Prometheus metrics served by the worker (``celery-docket worker --metrics-port N``).

celery-exporter builds its metrics from Celery's event stream; we have no event stream,
so the worker counts from our signals instead and serves the same names and labels, so
its dashboards and alerts keep working:

* counters ``celery_task_{sent,received,started,succeeded,failed,rejected,revoked,retried}_total``
  with labels ``name``, ``hostname``, ``queue_name`` (``failed`` adds ``exception``, the class
  name), and the histogram ``celery_task_runtime`` of successful runs;
* gauges read from Redis at scrape time: ``celery_queue_length`` (ready messages),
  ``celery_worker_up`` and ``celery_worker_tasks_active`` per live worker (heartbeats), and
  ours, ``celery_docket_queue_depth`` (every message in the stream: ready, reserved,
  running), ``celery_docket_parked`` (ETA/countdown/retry-delayed) and
  ``celery_docket_dead_letters``, all by ``queue_name``.

Counters count what this process saw: a worker counts the tasks it received and ran, and
``celery_task_sent_total`` the messages it published (follow-ups, retries are not sends).
With the prefork pool the children write to prometheus-client's multiprocess directory
and the parent serves their sum. The metrics live in prometheus-client's default registry,
so a task's own ``Counter`` shows on the same endpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from typing import Any

from .. import signals

log = logging.getLogger(__name__)

_UID = "celery_docket.contrib.prometheus"
_TASK_LABELS = ("name", "hostname", "queue_name")
_COUNTERS = {
    "sent": "Sent when a task message is published.",
    "received": "Sent when the worker receives a task.",
    "started": "Sent just before the worker executes the task.",
    "succeeded": "Sent if the task executed successfully.",
    "failed": "Sent if the execution of the task failed.",
    "rejected": "The task was rejected by the worker, possibly to be re-queued or moved to "
    "a dead letter queue.",
    "revoked": "Sent if the task has been revoked.",
    "retried": "Sent if the task failed, but will be retried in the future.",
}


class Metrics:
    """The task counters and runtime histogram, created once per process."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram

        self.counters: dict[str, Any] = {}
        for kind, doc in _COUNTERS.items():
            labels = (*_TASK_LABELS, "exception") if kind == "failed" else _TASK_LABELS
            self.counters[kind] = Counter(f"celery_task_{kind}", doc, labels, registry=registry)
        self.runtime = Histogram(
            "celery_task_runtime",
            "Histogram of task runtime measurements.",
            _TASK_LABELS,
            registry=registry,
        )
        self.seen: set[tuple[str, str, str]] = set()

    def count(self, kind: str, labels: tuple[str, str, str], exception: str = "") -> None:
        if labels not in self.seen:
            # as celery-exporter: every series of a task shows (at 0) once it was seen
            self.seen.add(labels)
            for other, counter in self.counters.items():
                if other != "sent":
                    extra = ("",) if other == "failed" else ()
                    counter.labels(*labels, *extra).inc(0)
        extra = (exception,) if kind == "failed" else ()
        self.counters[kind].labels(*labels, *extra).inc()


_metrics: Metrics | None = None


def _host(nodename: Any) -> str:
    """celery-exporter's ``hostname``: the part after ``@`` of a node name."""
    text = str(nodename or "")
    return text.partition("@")[2] or text


def _labels(task: Any, request: Any = None) -> tuple[str, str, str]:
    request = request if request is not None else getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    name = getattr(task, "name", None) or getattr(request, "task", None) or ""
    hostname = _host(getattr(request, "hostname", None)) or socket.gethostname()
    return str(name), hostname, str(delivery.get("routing_key") or "celery")


def _on_sent(sender: Any = None, routing_key: Any = None, **kw: Any) -> None:
    if _metrics is not None:
        labels = (str(sender), socket.gethostname(), str(routing_key or "celery"))
        _metrics.counters["sent"].labels(*labels).inc()


def _on_received(request: Any = None, **kw: Any) -> None:
    if _metrics is not None and request is not None:
        _metrics.count("received", _labels(None, request))


def _on_started(task: Any = None, **kw: Any) -> None:
    if _metrics is not None and task is not None:
        _metrics.count("started", _labels(task))


def _on_succeeded(sender: Any = None, runtime: Any = None, **kw: Any) -> None:
    if _metrics is not None and sender is not None:
        labels = _labels(sender)
        _metrics.count("succeeded", labels)
        if runtime is not None:
            _metrics.runtime.labels(*labels).observe(float(runtime))


def _on_failed(sender: Any = None, exception: Any = None, **kw: Any) -> None:
    if _metrics is not None and sender is not None:
        name = type(exception).__name__ if exception is not None else "UnknownException"
        _metrics.count("failed", _labels(sender), exception=name)


def _on_retried(sender: Any = None, request: Any = None, **kw: Any) -> None:
    if _metrics is not None and sender is not None:
        _metrics.count("retried", _labels(sender, request))


def _on_rejected(sender: Any = None, **kw: Any) -> None:
    if _metrics is not None and hasattr(sender, "name"):
        _metrics.count("rejected", _labels(sender))


def _on_revoked(sender: Any = None, request: Any = None, **kw: Any) -> None:
    if _metrics is not None and sender is not None:
        _metrics.count("revoked", _labels(sender, request))


_RECEIVERS = (
    (signals.after_task_publish, _on_sent),
    (signals.task_received, _on_received),
    (signals.task_prerun, _on_started),
    (signals.task_success, _on_succeeded),
    (signals.task_failure, _on_failed),
    (signals.task_retry, _on_retried),
    (signals.task_rejected, _on_rejected),
    (signals.task_revoked, _on_revoked),
)


def install(registry: Any = None) -> Metrics:
    """Create the metrics (once) and connect the receivers; returns the metrics."""
    global _metrics
    if _metrics is None:
        from prometheus_client import REGISTRY

        _metrics = Metrics(REGISTRY if registry is None else registry)
    for sig, receiver in _RECEIVERS:
        sig.connect(receiver, weak=False, dispatch_uid=_UID)
    return _metrics


def uninstall() -> None:
    """Stop counting (the metrics stay registered, with their values)."""
    for sig, receiver in _RECEIVERS:
        sig.disconnect(receiver, dispatch_uid=_UID)


class EngineCollector:
    """Gauges read from Redis when scraped (one ``queue_overview``: a few round trips)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def describe(self) -> list[Any]:
        return []  # no Redis round trip at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from ..control import queue_overview

        try:
            overview = queue_overview(self.app)
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail the endpoint
            log.warning("cannot read queue metrics from Redis: %s", exc)
            return
        gauges = {
            "celery_queue_length": ("The number of message in broker queue.", None),
            "celery_docket_queue_depth": (
                "Messages in the queue's stream: ready, reserved by a worker or running.",
                None,
            ),
            "celery_docket_parked": ("Messages parked until their ETA (countdown, retry).", None),
            "celery_docket_dead_letters": ("Messages in the queue's dead-letter stream.", None),
        }
        families = {
            name: GaugeMetricFamily(name, doc, labels=["queue_name"])
            for name, (doc, _) in gauges.items()
        }
        for queue, q in overview.get("queues", {}).items():
            families["celery_queue_length"].add_metric([queue], q["ready"])
            depth = q["ready"] + q["reserved"] + q["running"]
            families["celery_docket_queue_depth"].add_metric([queue], depth)
            families["celery_docket_parked"].add_metric([queue], q["scheduled"])
            families["celery_docket_dead_letters"].add_metric([queue], q["dead"])
        up = GaugeMetricFamily(
            "celery_worker_up",
            "Indicates if a worker has recently sent a heartbeat.",
            labels=["hostname"],
        )
        active = GaugeMetricFamily(
            "celery_worker_tasks_active",
            "The number of tasks the worker is currently processing",
            labels=["hostname"],
        )
        for node, info in overview.get("workers", {}).items():
            up.add_metric([_host(node)], 1)
            active.add_metric([_host(node)], info.get("active", 0))
        yield from families.values()
        yield up
        yield active


class Server:
    """The running endpoint; :meth:`close` stops it and unregisters the gauges."""

    def __init__(self, httpd: Any, registry: Any, collector: EngineCollector) -> None:
        self.httpd, self.registry, self.collector = httpd, registry, collector
        self.port = int(httpd.server_port)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.registry.unregister(self.collector)


def serve(app: Any, port: int, addr: str | None = None, *, multiprocess: bool = False) -> Server:
    """Count tasks and serve ``/metrics`` on ``addr:port`` from a background thread.

    ``multiprocess`` (the prefork pool): the counters of every child, summed through
    prometheus-client's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, made if unset).
    Call before the pool starts so the children inherit it.
    """
    from prometheus_client import REGISTRY, start_http_server

    addr = addr or os.environ.get("CELERY_DOCKET_METRICS_ADDR") or "0.0.0.0"
    registry: Any = REGISTRY
    if multiprocess:
        registry = _multiprocess_registry()
    install()
    collector = EngineCollector(app)
    registry.register(collector)
    httpd, _thread = start_http_server(port, addr=addr, registry=registry)
    log.info("metrics on http://%s:%s/metrics", addr, httpd.server_port)
    return Server(httpd, registry, collector)


def _multiprocess_registry() -> Any:
    """A registry summing the children's values; switches this process to files first."""
    from prometheus_client import CollectorRegistry, values
    from prometheus_client.multiprocess import MultiProcessCollector

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="celery-docket-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    if _metrics is None:
        values.ValueClass = values.MultiProcessValue()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return registry
