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

from ..engine import Docket
from ..engine.keys import GROUP, heartbeat_pattern
from ..engine.lua import Pipeline, Script
from ..protocol import TaskMessage
from .layout import CeleryLayout, once_key
from .translate import to_kombu

log = logging.getLogger("celery_docket.cutover")

READY_BACK = """
-- KEYS: stream, Celery's list, run key, intake once token. ARGV: group, entry id, message
if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('DEL', KEYS[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HGET', KEYS[3], 'm') == ARGV[2] then redis.call('DEL', KEYS[3]) end
redis.call('LPUSH', KEYS[2], ARGV[3])
return 1
"""

PARKED_BACK = """
-- KEYS: due, run key, Celery's list, intake once token. ARGV: execution id, kombu message
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[4])
redis.call('DEL', KEYS[2])
redis.call('LPUSH', KEYS[3], ARGV[2])
return 1
"""


def _dumps(value: Any) -> str:
    """kombu's JSON (what its transport writes): typed values survive the trip."""
    text: str = kjson.dumps(value)  # type: ignore[no-untyped-call]
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
        self._ready = Script(READY_BACK)
        self._parked = Script(PARKED_BACK)

    def _once(self, msg: TaskMessage) -> str:
        """The intake's token for this message: forgotten, so it may come in again later."""
        return once_key(self.docket.prefix, msg.id, int(msg.headers.get("retries") or 0))

    def live_workers(self) -> list[str]:
        pattern = heartbeat_pattern(self.docket.prefix)
        return sorted(k.decode() for k in self.redis.scan_iter(match=pattern, count=500))

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
        except Exception:
            tally.foreign += 1
            log.warning("left %s here: not a Celery task message", function)
            return None
        return msg

    def _ready_queue(
        self, q: str, tally: BackTally, dry_run: bool, progress: Callable[[BackTally], None] | None
    ) -> None:
        k = self.docket.keys(q)
        start = "-"
        while True:
            entries = self.redis.xrange(k.stream, min=start, max="+", count=self.batch)
            if not entries:
                return
            start = "(" + entries[-1][0].decode()
            pipe = Pipeline(self.redis)
            names: list[str] = []
            for mid, fields in entries:
                if fields.get(b"p") == b"1":
                    tally.perpetual += 1
                    continue
                function = fields.get(b"n", b"").decode()
                msg = self._message(fields.get(b"b", b""), function, tally)
                if msg is None:
                    continue
                if dry_run:
                    tally.moved[q] += 1
                    tally.by_task[msg.task] += 1
                    continue
                payload = _dumps(to_kombu(msg, q))
                target = self.layout.queue_list(q, self.layout.step(msg.properties.get("priority")))
                pipe.script(
                    self._ready,
                    [k.stream, target, k.run(fields.get(b"i", b"").decode()), self._once(msg)],
                    [GROUP, mid.decode(), payload],
                )
                names.append(msg.task)
            for name, done in zip(names, pipe.execute(), strict=True):
                if done:
                    tally.moved[q] += 1
                    tally.by_task[name] += 1
            if progress is not None:
                progress(tally)

    def _parked_queue(
        self, q: str, tally: BackTally, dry_run: bool, progress: Callable[[BackTally], None] | None
    ) -> None:
        k = self.docket.keys(q)
        rows = self.redis.zrange(k.due, 0, -1, withscores=True)
        for start in range(0, len(rows), self.batch):
            chunk = rows[start : start + self.batch]
            read = self.redis.pipeline(transaction=False)
            for raw_id, _score in chunk:
                read.hgetall(k.run(raw_id.decode()))
            pipe = Pipeline(self.redis)
            names: list[str] = []
            for (raw_id, score), record in zip(chunk, read.execute(), strict=True):
                eid = raw_id.decode()
                if record.get(b"p") == b"1":
                    tally.perpetual += 1
                    continue
                msg = self._message(record.get(b"b", b""), record.get(b"n", b"").decode(), tally)
                if msg is None:
                    continue
                if dry_run:
                    tally.moved[q] += 1
                    tally.parked += 1
                    tally.by_task[msg.task] += 1
                    continue
                eta = datetime.fromtimestamp(float(score) / 1000, timezone.utc)
                msg.headers["eta"] = eta.isoformat()
                payload = _dumps(to_kombu(msg, q))
                target = self.layout.queue_list(q, self.layout.step(msg.properties.get("priority")))
                pipe.script(
                    self._parked, [k.due, k.run(eid), target, self._once(msg)], [eid, payload]
                )
                names.append(msg.task)
            for name, done in zip(names, pipe.execute(), strict=True):
                if done:
                    tally.moved[q] += 1
                    tally.parked += 1
                    tally.by_task[name] += 1
            if progress is not None:
                progress(tally)
