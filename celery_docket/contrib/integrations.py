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
        except Exception:  # noqa: BLE001 - observability must never stop a worker
            log.exception("could not enable the Sentry integration")
    if "opentelemetry.instrumentation.celery" in sys.modules:
        try:
            from . import opentelemetry

            if opentelemetry.follow_instrumentor():
                installed.append("opentelemetry")
        except Exception:  # noqa: BLE001
            log.exception("could not enable the OpenTelemetry integration")
    return installed


def on_first_publish() -> None:
    """Called by ``send_task`` once per process (the flag makes later publishes free)."""
    global publish_pending
    publish_pending = False
    autoload()
