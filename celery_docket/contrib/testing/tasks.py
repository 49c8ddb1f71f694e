"""The task Celery's test worker pings (``celery.contrib.testing.tasks``)."""

from __future__ import annotations

from celery_docket import shared_task


@shared_task(name="celery.ping")
def ping() -> str:
    """Answer ``'pong'``: a worker that runs this consumes and stores results."""
    return "pong"
