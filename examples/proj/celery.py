"""The demo app.

The broker is ``memory://`` (an in-process Redis, nothing to install) unless
``CELERY_BROKER_URL`` (or ``celery-docket -b URL``) names a real one. On ``memory://`` the
producer must live in the worker's process, so the demo calls are sent from a
``worker_ready`` handler in :mod:`examples.proj.tasks`.
"""

from __future__ import annotations

import os

from celery_docket import Celery

app = Celery(
    "proj",
    broker=os.environ.get("CELERY_BROKER_URL", "memory://"),
    include=["examples.proj.tasks"],
)

app.conf.update(
    result_expires=3600,
    timezone="UTC",
    beat_schedule={
        # Sent every 5 seconds by whichever worker claims the tick first (each tick once).
        "tick-every-5-seconds": {"task": "examples.proj.tasks.tick", "schedule": 5.0},
    },
)
