"""``celery.beat``: the names projects import; the scheduler itself is the worker's.

Every celery_docket worker (and ``celery-docket beat``) schedules ``beat_schedule`` entries,
claiming each tick atomically in Redis. Custom scheduler classes (``Scheduler`` subclasses,
database schedulers) are not run: using one raises NotImplementedError rather than
silently scheduling nothing.
"""

from __future__ import annotations

from typing import Any

from .schedules import crontab, schedule

__all__ = (
    "PersistentScheduler",
    "ScheduleEntry",
    "Scheduler",
    "SchedulingError",
    "crontab",
    "schedule",
)

_WHY = (
    "celery_docket schedules beat_schedule entries in the worker itself and cannot run a "
    "custom beat scheduler ({name}); put the entries in app.conf.beat_schedule instead"
)


class SchedulingError(Exception):
    """An error while sending a scheduled task."""


class _NotRun:
    """Importable and subclassable, so modules load; instantiating one fails loudly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_WHY.format(name=type(self).__qualname__))


class ScheduleEntry(_NotRun):
    """Celery's in-memory beat entry; entries here come from ``beat_schedule``."""


class Scheduler(_NotRun):
    """Celery's scheduler base class (for custom and database schedulers)."""


class PersistentScheduler(Scheduler):
    """Celery's shelve-file scheduler; no schedule file is needed here."""
