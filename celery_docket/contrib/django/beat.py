"""``beat_scheduler = "django_celery_beat.schedulers:DatabaseScheduler"``: database rows as
our perpetual schedule.

Projects keep their periodic tasks in django-celery-beat's ``PeriodicTask`` table and edit
them in the admin. Here the enabled rows become beat entries beside ``beat_schedule`` (a row
wins over a config entry of the same name), so each tick is an automatic perpetual like any
other: claimed once in Redis, however many workers run. Every worker re-reads the rows each
``beat_max_loop_interval`` (5 s by default): a new or changed row is (re)parked at once, a
disabled or deleted one is dropped when its parked tick comes up. After each run
``last_run_at`` and ``total_run_count`` are recorded as django-celery-beat does, and one-off
rows are disabled.

Honoured: interval, crontab (in the row's timezone), clocked (one-off), ``one_off``,
``enabled``, ``args``/``kwargs``, ``queue``, ``priority``, ``headers``, ``expires`` and
``expire_seconds``, ``start_time`` (the first run waits for it). Refused, at start-up on one line (and
logged and skipped for rows added later): solar schedules (our schedules have none) and rows
routed by ``exchange``/``routing_key``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from ... import _state
from ...exceptions import ImproperlyConfigured

log = logging.getLogger("celery.beat")

DATABASE_SCHEDULERS = frozenset(
    {
        "django_celery_beat.schedulers:DatabaseScheduler",
        "django_celery_beat.schedulers.DatabaseScheduler",
    }
)

#: Celery's default scheduler classes: what our perpetual schedule does anyway
_DEFAULT_SCHEDULERS = frozenset(
    f"{package}.beat.{cls}"
    for package in ("celery", "celery_docket")
    for cls in ("PersistentScheduler", "Scheduler")
)

__all__ = [
    "DATABASE_SCHEDULERS",
    "DatabaseSchedule",
    "database_schedule",
    "database_schedule_for_tick",
    "follow_edits",
]


class Unsupported(Exception):
    """A row we cannot honour; the message says why."""


def is_database_scheduler(name: Any) -> bool:
    return isinstance(name, str) and name.strip() in DATABASE_SCHEDULERS


def database_schedule_for_tick(app: Any) -> DatabaseSchedule | None:
    """For a worker not told of the database scheduler that runs a tick it does not know
    (the rows were scheduled by ``celery-docket beat -S ...``): the rows, if this is a
    Django project with django_celery_beat installed, else None. Never refuses."""
    try:
        from django.apps import apps

        if not (apps.ready and apps.is_installed("django_celery_beat")):
            return None
    except ImportError:
        return None
    schedule = DatabaseSchedule(app)
    schedule.load()
    return schedule


def database_schedule(app: Any) -> DatabaseSchedule | None:
    """The app's database schedule when its ``beat_scheduler`` names one, else None.

    Refuses (``ImproperlyConfigured``, one line) what cannot be run: Django not set up,
    django_celery_beat not installed, or a row we cannot honour.
    """
    name = app.conf.get("beat_scheduler")
    if not isinstance(name, str) and name is not None:  # a class, as Celery also takes
        name = f"{name.__module__}:{name.__qualname__}"
    if not is_database_scheduler(name):
        if name and name.strip().replace(":", ".") not in _DEFAULT_SCHEDULERS:
            raise ImproperlyConfigured(
                f"beat_scheduler {name!r} cannot be used with celery_docket: entries come from "
                "beat_schedule (and django_celery_beat's DatabaseScheduler), scheduled in Redis"
            )
        return None
    signal = getattr(app, "signal_import_modules", None)
    if callable(signal):
        signal()  # Django's set-up (the fix-up) comes before the first query
    try:
        from django.apps import apps

        installed = apps.is_installed("django_celery_beat")
    except Exception as exc:  # noqa: BLE001 - ImportError, AppRegistryNotReady
        raise ImproperlyConfigured(
            "beat_scheduler DatabaseScheduler needs a Django project "
            f"(DJANGO_SETTINGS_MODULE) with django_celery_beat installed: {exc}"
        ) from None
    if not installed:
        raise ImproperlyConfigured(
            "beat_scheduler DatabaseScheduler needs 'django_celery_beat' in INSTALLED_APPS"
        )
    schedule = DatabaseSchedule(app)
    schedule.load(strict=True)
    return schedule


class _ZoneApp:
    """Gives a crontab the zone of its row (CrontabSchedule.timezone) instead of the app's."""

    def __init__(self, zone: str) -> None:
        self.conf = SimpleNamespace(timezone=zone, enable_utc=True)


class _Clocked:
    """A ClockedSchedule: one run at ``clocked_time`` (at once if that is past)."""

    def __init__(self, when: datetime) -> None:
        self.when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)

    def next_fire_after(self, after: datetime) -> datetime:
        after = after if after.tzinfo else after.replace(tzinfo=timezone.utc)
        return self.when if self.when > after else after

    def __repr__(self) -> str:
        return f"<clocked: {self.when.isoformat()}>"


def _schedule_of(row: Any) -> Any:
    from ...schedules import crontab, schedule

    if row.solar_id is not None:
        raise Unsupported("solar schedules are not supported by celery_docket")
    if row.interval_id is not None:
        interval = row.interval
        return schedule(timedelta(**{interval.period: interval.every}))
    if row.crontab_id is not None:
        cron = row.crontab
        return crontab(
            minute=cron.minute,
            hour=cron.hour,
            day_of_week=cron.day_of_week,
            day_of_month=cron.day_of_month,
            month_of_year=cron.month_of_year,
            app=_ZoneApp(str(cron.timezone)),
        )
    if row.clocked_id is not None:
        if not row.one_off:
            raise Unsupported("a clocked schedule must be one_off (as django-celery-beat says)")
        return _Clocked(row.clocked.clocked_time)
    raise Unsupported("no schedule (interval, crontab or clocked) is set")


def entry_from_row(row: Any) -> dict[str, Any]:
    """A ``beat_schedule`` entry for one PeriodicTask row (``Unsupported`` if it can't be)."""
    if row.exchange or row.routing_key:
        raise Unsupported("exchange/routing_key routing is not supported: set queue instead")
    options: dict[str, Any] = {}
    if row.queue:
        options["queue"] = row.queue
    if row.priority is not None:
        options["priority"] = row.priority
    if row.expire_seconds is not None:
        options["expires"] = float(row.expire_seconds)
    elif row.expires is not None:
        options["expires"] = row.expires
    headers = json.loads(row.headers or "{}")
    headers.setdefault("periodic_task_name", row.name)  # as django-celery-beat sends it
    options["headers"] = headers
    return {
        "task": row.task,
        "schedule": _schedule_of(row),
        "args": json.loads(row.args or "[]"),
        "kwargs": json.loads(row.kwargs or "{}"),
        "options": options,
        "one_off": bool(row.one_off),
        "start_time": row.start_time,
        "expires_at": row.expires,
    }


def _fingerprint(entry: dict[str, Any]) -> str:
    return repr(
        (entry["task"], repr(entry["schedule"]), entry["args"], entry["kwargs"], entry["options"])
    )


class DatabaseSchedule:
    """The enabled PeriodicTask rows, re-read on demand, and what a run records."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.interval = float(app.conf.get("beat_max_loop_interval") or 5.0)
        self._loaded_at = 0.0

    def entries(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._entries)

    def fresh_entries(self) -> dict[str, dict[str, Any]]:
        """The entries, re-read first when older than the interval (a tick is about to run
        or be rescheduled: a row switched off since must not be)."""
        if time.monotonic() - self._loaded_at > self.interval:
            self.load()
        return self.entries()

    def load(self, strict: bool = False) -> dict[str, dict[str, Any]]:
        """Re-read the rows; returns the entries whose definition changed (or are new)."""
        from django_celery_beat.models import PeriodicTask

        rows = PeriodicTask.objects.filter(enabled=True).select_related(
            "interval", "crontab", "clocked"
        )
        entries: dict[str, dict[str, Any]] = {}
        for row in rows:
            try:
                entries[row.name] = entry_from_row(row)
            except (Unsupported, ValueError) as exc:
                line = f"periodic task {row.name!r} (django_celery_beat) cannot be run: {exc}"
                if strict:
                    raise ImproperlyConfigured(line) from None
                log.error("beat: %s; skipping it", line)
        _close_idle_connection(PeriodicTask)
        with self._lock:
            old, self._entries = self._entries, entries
            self._loaded_at = time.monotonic()
        return {
            name: entry
            for name, entry in entries.items()
            if name not in old or _fingerprint(old[name]) != _fingerprint(entry)
        }

    def should_run(self, name: str, now: datetime) -> bool:
        entry = self.fresh_entries().get(name)
        if entry is None:
            return False
        expires_at = entry.get("expires_at")
        if expires_at is not None and now >= expires_at:
            self._disable(name)  # as django-celery-beat does with an expired row
            return False
        return True

    def first_due(self, entry: dict[str, Any], due: datetime) -> datetime:
        start = entry.get("start_time")
        return max(due, start) if start is not None else due

    def record_run(self, name: str, entry: dict[str, Any]) -> None:
        """``last_run_at`` and ``total_run_count`` (updates send no signal, so no edit is
        seen); a one-off row is disabled after its run."""
        from django.db.models import F
        from django.utils import timezone as dj_timezone
        from django_celery_beat.models import PeriodicTask

        changes: dict[str, Any] = {
            "last_run_at": dj_timezone.now(),
            "total_run_count": F("total_run_count") + 1,
        }
        if entry.get("one_off"):
            changes["enabled"] = False
            with self._lock:
                self._entries.pop(name, None)
        PeriodicTask.objects.filter(name=name).update(**changes)
        _close_idle_connection(PeriodicTask)

    def _disable(self, name: str) -> None:
        from django_celery_beat.models import PeriodicTask

        with self._lock:
            self._entries.pop(name, None)
        PeriodicTask.objects.filter(name=name).update(enabled=False)
        _close_idle_connection(PeriodicTask)


def _close_idle_connection(model: Any) -> None:
    """Outside a task nobody closes the connection we opened: close it (not mid-transaction)."""
    from django.db import connections, router

    connection = connections[router.db_for_write(model)]
    if _state.get_current_task() is None and not connection.in_atomic_block:
        connection.close()


def follow_edits(planner: Any, worker: Any, queues: list[str]) -> threading.Thread:
    """Re-read the rows every ``beat_max_loop_interval`` seconds while ``worker`` runs: the
    engine re-asserts the new list of perpetuals, and a new or changed row is (re)parked at
    once under its key (the replace moves a parked tick; it never adds a second one)."""
    from ...engine.docket import Call

    interval = planner.database.interval

    def refresh() -> None:
        changed = planner.database.load()
        specs = planner.perpetuals(queues)
        worker.perpetuals[:] = specs
        if not changed:
            return
        now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        calls = [
            Call(
                spec.function,
                spec.body,
                queue=spec.queue,
                key=spec.key,
                when=spec.first_when_ms(now_ms) / 1000.0 if spec.first_when_ms else None,
                perpetual=True,
                replace=True,
            )
            for spec in specs
            if spec.key[len("beat:") :] in changed
        ]
        if calls:
            worker.docket.enqueue_many(calls)
            log.info("beat: %d periodic task(s) from the database (re)scheduled", len(calls))

    def run() -> None:
        stopped = threading.Event()
        while not worker.stopping:
            stopped.wait(interval)
            if worker.stopping:
                return
            try:
                refresh()
            except Exception:  # a database hiccup must not end the schedule
                log.exception("beat: reading django_celery_beat's periodic tasks failed")

    thread = threading.Thread(target=run, name="docket-beat-db", daemon=True)
    thread.start()
    return thread
