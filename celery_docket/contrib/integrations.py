"""Switch on the observability integrations whose libraries the user has set up.

Sentry's ``CeleryIntegration`` and OpenTelemetry's ``CeleryInstrumentor`` hook into real
Celery (its tracer, its ``celery.signals``), which a celery_docket app never uses. Rather
than ask users to change their set-up code, we look at the process when a worker starts
(after ``worker_init``/``worker_process_init``, where such set-up usually lives) and at the
first publish of the process, and connect our own receivers to our signals when
``sentry_sdk`` is initialised or the instrumentor is instrumented. Nothing here imports
those libraries unless the user already did: a process without them pays one flag check
per publish.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

#: True until the first publish of this process has looked for integrations.
publish_pending = True


def autoload() -> list[str]:
    """Install every integration whose library is set up now; returns their names.

    Idempotent and cheap: called at worker start-up and at the first publish.
    """
    installed: list[str] = []
    if "sentry_sdk" in sys.modules:
        try:
            from . import sentry

            if sentry.install_if_active():
                installed.append("sentry")
        except Exception:  # observability must never stop a worker
            log.exception("could not enable the Sentry integration")
    if "opentelemetry.instrumentation.celery" in sys.modules:
        try:
            from . import opentelemetry

            if opentelemetry.follow_instrumentor():
                installed.append("opentelemetry")
        except Exception:
            log.exception("could not enable the OpenTelemetry integration")
    return installed


def on_first_publish(app: Any = None) -> None:
    """Called by ``send_task`` once per process (the flag makes later publishes free)."""
    global publish_pending
    publish_pending = False
    autoload()
    if app is not None and app.conf.get("task_send_sent_event"):
        from ..events import sent

        sent.install(app)


def attach_worker(controller: Any) -> None:
    """Integrations a worker's settings ask for (``-E``: task events), before any fork."""
    app = controller.app
    if app.conf.get("task_send_sent_event"):
        from ..events import sent

        sent.install(app)
    if app.conf.get("worker_send_task_events"):
        from ..events import worker

        worker.install(app, controller.hostname)


def detach_worker(controller: Any) -> None:
    """Undo :func:`attach_worker` (a worker stopped inside a process that goes on)."""
    if controller.app.conf.get("worker_send_task_events"):
        from ..events import worker

        worker.uninstall()


def node_agent(controller: Any) -> Any:
    """Start the worker node's event heartbeats and Celery pidbox node (``-E`` only);
    returns the agent to stop, or None."""
    if not controller.app.conf.get("worker_send_task_events"):
        return None
    from ..events.worker import NodeAgent

    return NodeAgent(controller.app, controller.hostname).start()


def prefork_child(controller: Any, worker: Any, slot: int) -> None:
    """In a prefork child with ``-E``: child 0 runs the node agent (restarted with it), and
    every child publishes its held task events when its consumer stops, before it exits."""
    if not controller.app.conf.get("worker_send_task_events"):
        return
    from ..events import worker as events

    if slot == 0:
        events.NodeAgent(controller.app, controller.hostname).start()
    run = worker.run

    def run_then_flush(*args: Any, **kwargs: Any) -> Any:
        try:
            return run(*args, **kwargs)
        finally:
            events.flush()

    worker.run = run_then_flush


def worker_offline(controller: Any) -> None:
    """The node's ``worker-offline`` event, sent by the process that outlives the pool."""
    if controller.app.conf.get("worker_send_task_events"):
        from ..events.worker import NodeAgent

        NodeAgent(controller.app, controller.hostname).send_worker("offline")
