"""The dead-letter stream as Celery users see it: task ids, names and arguments, replay.

The engine keeps dead letters by execution id and function name (``engine/admin.py``); this
module adds the task id from the Celery message, its arguments for listings, and forgets the
stored outcome before a replay, so waiting on the task waits for the new run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..engine import admin
from .queues import known_queues
from .shapes import message_info

log = logging.getLogger("celery_docket.control")

__all__ = ["DeadEntry", "dead_entries", "purge_dead", "replay_dead"]


class DeadEntry(admin.DeadLetter):
    """One dead-lettered message."""

    @property
    def task_id(self) -> str:
        try:
            from ..protocol import TaskMessage

            return TaskMessage.decode(self.body).id
        except Exception:  # noqa: BLE001 - native or malformed: the execution id
            return self.execution_id

    def as_dict(self, app: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "entry": self.entry_id,
            "queue": self.queue,
            "id": self.task_id,
            "execution_id": self.execution_id,
            "name": self.function,
            "reason": self.reason,
            "attempt": self.attempt,
            "dead_at": datetime.fromtimestamp(self.when, timezone.utc).isoformat()
            if self.when
            else None,
        }
        if app is not None:
            info = message_info(app, self.body, self.queue, "")
            if info is not None:
                out["args"], out["kwargs"] = info["args"], info["kwargs"]
        return out


def dead_entries(
    app: Any,
    queues: Sequence[str] | None = None,
    task_id: str | None = None,
    limit: int | None = None,
) -> list[DeadEntry]:
    """Dead letters of ``queues`` (default: every known queue), newest first; ``task_id``
    selects by task id, execution id or dead entry id."""
    out: list[DeadEntry] = []
    for q in queues or known_queues(app):
        for letter in admin.dead_letters(app.docket, q, count=None if task_id else limit):
            d = DeadEntry(**vars(letter))
            if task_id and task_id not in (d.entry_id, d.execution_id, d.task_id):
                continue
            out.append(d)
    out.sort(key=lambda d: tuple(int(p) for p in d.entry_id.split("-")), reverse=True)
    return out[:limit] if limit else out


def replay_dead(
    app: Any, entries: Iterable[DeadEntry]
) -> tuple[list[DeadEntry], list[tuple[DeadEntry, str]]]:
    """Re-add each dead letter's original message to its queue and drop the dead letter
    (the result stored when it died is forgotten, so waiting on it waits for the new run).

    Returns (replayed, [(skipped, why)]): a malformed entry cannot be replayed, and a keyed
    one whose key is live again is left alone.
    """
    replayed: list[DeadEntry] = []
    skipped: list[tuple[DeadEntry, str]] = []
    for d in entries:
        if d.function == "?" or not d.execution_id or d.execution_id == "?":
            skipped.append((d, "malformed entry: nothing to replay"))
            continue
        try:  # the outcome stored when it was dead-lettered (e.g. FAILURE) is obsolete
            app.results.forget(d.task_id)
        except Exception:  # noqa: BLE001 - replay anyway
            log.warning("could not reset the result of %s", d.task_id)
        if not admin.replay(app.docket, d).added:
            skipped.append((d, f"a live execution {d.execution_id} already exists"))
            continue
        replayed.append(d)
    return replayed, skipped


def purge_dead(app: Any, entries: Iterable[DeadEntry]) -> int:
    """Delete dead letters; returns how many."""
    return admin.drop_dead(app.docket, entries)
