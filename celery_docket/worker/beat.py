"""Beat without a beat process: each ``beat_schedule`` entry is an automatic perpetual.

Every worker re-asserts each entry under the key ``beat:<entry name>`` (a no-op when it
exists), so N workers run each tick once and no crash loses a schedule. After a run, the next
tick is parked in the same atomic step as the ack. An entry removed from the config is not
rescheduled after its next run: no orphan schedules. Missed ticks after downtime run once,
as Celery does, not as a burst.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from ..engine import Delivery, Outcome, PerpetualSpec
from ..protocol import build_task_message
from ..schedules import maybe_schedule

log = logging.getLogger("celery.beat")

PREFIX = "beat:"


class BeatPlanner:
    """Turns the app's beat_schedule into perpetual specs and plans each next tick."""

    def __init__(self, app: Any) -> None:
        self.app = app
        from ..contrib.django.beat import database_schedule

        # django-celery-beat's rows, when beat_scheduler names its DatabaseScheduler
        self.database = database_schedule(app)

    def entries(self) -> dict[str, dict[str, Any]]:
        entries = dict(self.app.conf.get("beat_schedule") or {})
        if self.database is not None:
            entries.update(self.database.entries())
        return entries

    def _schedule(self, entry: dict[str, Any]) -> Any:
        sched = entry["schedule"]
        if isinstance(sched, (int, float)):
            sched = timedelta(seconds=float(sched))
        sched = maybe_schedule(sched)
        if sched is not None and getattr(sched, "app", None) is None:
            try:
                sched.app = self.app
            except AttributeError:
                pass
        return sched

    def _message(self, entry: dict[str, Any], queue: str) -> bytes:
        options = dict(entry.get("options") or {})
        return build_task_message(
            entry["task"],
            list(entry.get("args") or ()),
            dict(entry.get("kwargs") or {}),
            task_id=str(uuid.uuid4()),
            queue=queue,
            serializer=options.get("serializer") or self.app.conf.task_serializer,
            expires=options.get("expires"),
            headers=options.get("headers"),
            priority=options.get("priority"),
        ).encode()

    def queue_of(self, entry: dict[str, Any]) -> str:
        options = dict(entry.get("options") or {})
        task = self.app._tasks.get(entry["task"])
        return self.app.route(entry["task"], entry.get("args"), entry.get("kwargs"), options, task)

    def next_due_ms(self, entry: dict[str, Any], after: datetime) -> int:
        nxt = self._schedule(entry).next_fire_after(after)
        start = entry.get("start_time")  # a database row's: no run before it
        if start is not None and nxt < start:
            nxt = start
        return int(nxt.timestamp() * 1000)

    def perpetuals(self, queues: list[str]) -> list[PerpetualSpec]:
        specs = []
        for name, entry in self.entries().items():
            queue = self.queue_of(entry)
            if queue not in queues:
                continue

            def first(now_ms: int, entry: dict[str, Any] = entry) -> int:
                now = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
                return self.next_due_ms(entry, now)

            specs.append(
                PerpetualSpec(
                    f"{PREFIX}{name}",
                    entry["task"],
                    self._message(entry, queue),
                    queue=queue,
                    first_when_ms=first,
                )
            )
        return specs

    def after_run(self, d: Delivery, outcome: Outcome) -> Outcome:
        """Replace the plain outcome with 'park the next tick' (keeping the result write)."""
        name = d.execution_id[len(PREFIX) :]
        entry = self.entries().get(name)
        if entry is None:
            log.info("beat: entry %r is no longer configured; not rescheduling", name)
            return outcome
        if outcome.action == "again":  # a retry of this tick: let it run again first
            return outcome
        if self.database is not None and entry.get("one_off") is not None:
            self.database.record_run(name, entry)  # last_run_at, total_run_count
            if entry["one_off"]:
                return outcome
        now = datetime.now(timezone.utc)
        queue = d.queue
        when = self.next_due_ms(entry, now)
        log.debug("beat: %s next at %s", name, datetime.fromtimestamp(when / 1000, timezone.utc))
        return Outcome.again(when, self._message(entry, queue), 1, outcome.result)

    def should_run(self, d: Delivery) -> bool:
        """False for a parked tick of a database row since disabled, deleted or expired."""
        name = d.execution_id[len(PREFIX) :]
        config = self.app.conf.get("beat_schedule") or {}
        if self.database is None and name not in config:
            # a tick we were not told of: scheduled from the database by `beat -S ...`?
            from ..contrib.django.beat import database_schedule_for_tick

            self.database = database_schedule_for_tick(self.app)
        if self.database is None:
            return True
        if name in self.database.fresh_entries():
            return self.database.should_run(name, datetime.now(timezone.utc))
        return name in config

    def attach(self, worker: Any, queues: list[str]) -> None:
        """Follow database edits for ``worker`` (a thread; nothing without a database)."""
        if self.database is not None:
            from ..contrib.django.beat import follow_edits

            follow_edits(self, worker, queues)
