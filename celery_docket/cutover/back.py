"""The way back: our waiting work written to Celery's lists as protocol-2 messages.

For a team that must roll back to Celery: every entry of our streams (ready, and delivered to
a worker that is gone) and every parked execution (ETA, countdown, retry backoff) becomes a
kombu message ``LPUSH``-ed on the queue's list for its priority step, in one Lua call with its
removal from our structures (and of the intake's once token, so a later cutover takes it
again), so nothing is in both places and nothing is dropped. A parked
execution's due time goes into the ``eta`` header, which Celery's worker honours. Perpetual
executions (our beat entries) are not carried back: Celery beat owns them again.
Run it with our workers stopped: entries a live worker holds are refused unless ``force``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kombu.utils import json as kjson

from ..engine import Docket, handover, snapshot
from ..protocol import TaskMessage
from .layout import CeleryLayout, once_key
from .translate import to_kombu

log = logging.getLogger("celery_docket.cutover")


def _dumps(value: Any) -> str:
    """kombu's JSON (what its transport writes): typed values survive the trip."""
    text: str = kjson.dumps(value)
    return text


@dataclass
class BackTally:
    """What went back, per queue and per task name; what stayed and why."""

    moved: Counter[str] = field(default_factory=Counter)
    by_task: Counter[str] = field(default_factory=Counter)
    parked: int = 0
    perpetual: int = 0
    foreign: int = 0
    """Entries that are not Celery task messages (the engine's native calls): left here."""

    @property
    def total(self) -> int:
        return sum(self.moved.values())


class LiveWorkers(RuntimeError):
    """Our workers are still running: their in-flight work cannot be handed back safely."""


class Returner:
    """Moves one app's waiting work back to Celery's lists."""

    def __init__(self, app: Any, *, layout: CeleryLayout | None = None, batch: int = 200) -> None:
        conf = app.conf
        self.app = app
        self.layout = layout or CeleryLayout.from_options(conf.get("broker_transport_options"))
        self.docket = Docket(
            app.broker_url, prefix=conf.get("docket_key_prefix") or "cd", max_connections=4
        )
        self.redis: Any = self.docket.redis
        self.batch = batch

    def _once(self, msg: TaskMessage) -> str:
        """The intake's token for this message: forgotten, so it may come in again later."""
        return once_key(self.docket.prefix, msg.id, int(msg.headers.get("retries") or 0))

    def live_workers(self) -> list[str]:
        return sorted(
            str(b.get("consumer") or b.get("hostname")) for b in snapshot.heartbeats(self.docket)
        )

    def census(self, queues: Iterable[str]) -> BackTally:
        """What would go back (the dry run)."""
        return self.run(queues, dry_run=True, force=True)

    def run(
        self,
        queues: Iterable[str],
        *,
        dry_run: bool = False,
        force: bool = False,
        progress: Callable[[BackTally], None] | None = None,
    ) -> BackTally:
        if not dry_run and not force and self.live_workers():
            raise LiveWorkers(
                f"{len(self.live_workers())} celery_docket worker(s) are running; stop them first "
                "(or pass --force to hand back work they may be running)"
            )
        tally = BackTally()
        for q in queues:
            self._ready_queue(q, tally, dry_run, progress)
            self._parked_queue(q, tally, dry_run, progress)
        return tally

    def _message(self, body: bytes, function: str, tally: BackTally) -> TaskMessage | None:
        try:
            msg = TaskMessage.decode(body)
        except Exception:  # noqa: BLE001 - a message that cannot be translated is left in place and counted
            tally.foreign += 1
            log.warning("left %s here: not a Celery task message", function)
            return None
        return msg

    def _ready_queue(
        self, q: str, tally: BackTally, dry_run: bool, progress: Callable[[BackTally], None] | None
    ) -> None:
        after = "-"
        while True:
            entries = handover.ready_entries(self.docket, q, after, self.batch)
            if not entries:
                return
            after = entries[-1].entry_id or after
            self._give(entries, tally, dry_run)
            if progress is not None:
                progress(tally)

    def _parked_queue(
        self, q: str, tally: BackTally, dry_run: bool, progress: Callable[[BackTally], None] | None
    ) -> None:
        start = 0  # what stays (beat entries, native calls, a dry run) is paged past
        while True:
            rows = handover.parked_entries(self.docket, q, start, self.batch)
            if not rows:
                return
            start += len(rows) - self._give(rows, tally, dry_run)
            if progress is not None:
                progress(tally)

    def _give(self, works: list[handover.Waiting], tally: BackTally, dry_run: bool) -> int:
        """Hand ``works`` back (or count them, in a dry run); returns how many left here."""
        steps = handover.batch(self.docket)
        names: list[tuple[str, bool]] = []
        for work in works:
            if work.perpetual:
                tally.perpetual += 1
                continue
            msg = self._message(work.body, work.function, tally)
            if msg is None:
                continue
            parked = work.due_ms is not None
            if dry_run:
                tally.moved[work.queue] += 1
                tally.parked += parked
                tally.by_task[msg.task] += 1
                continue
            if parked:
                eta = datetime.fromtimestamp(float(work.due_ms or 0) / 1000, timezone.utc)
                msg.headers["eta"] = eta.isoformat()
            payload = _dumps(to_kombu(msg, work.queue))
            step = self.layout.step(msg.properties.get("priority"))
            steps.give(work, self.layout.queue_list(work.queue, step), payload, self._once(msg))
            names.append((msg.task, parked))
        gone = 0
        for (name, parked), done in zip(names, steps.execute(), strict=True):
            if done:
                gone += 1
                tally.moved[works[0].queue] += 1
                tally.parked += parked
                tally.by_task[name] += 1
        return gone
