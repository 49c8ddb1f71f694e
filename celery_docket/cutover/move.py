"""Move Celery's waiting and orphaned messages into our streams, each in one atomic step.

Every move is one Lua call that removes the message from Celery's structure (``LREM`` from the
queue's list, or ``HDEL`` from ``unacked`` plus ``ZREM`` from ``unacked_index``) and, only if
that removed it, runs the engine's own add script: the message lands in our stream, or parked
in ``due`` when it has an ETA. A message another consumer took first (a Celery worker, another
intake, kombu restoring it) is reported ``gone`` and nothing is added. An add also takes a
``once`` token per (task id, retries), kept an hour, so a copy of the same message met soon
after (the same message published twice) is dropped instead of run twice.

Celery's keys and ours are in different hash slots: this needs one Redis (not a Cluster), the
same one Celery and we share during a rolling deploy.

Reserved (unacked) messages are taken only once they are older than ``unacked_age`` seconds
(default: Celery's ``visibility_timeout``), the rule kombu itself uses to hand them to another
worker: a Celery worker still running would keep its younger reservations.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kombu.exceptions import ContentDisallowed

from ..engine import Docket, handover
from ..engine.clock import to_epoch_ms
from ..keys import CHORD_SIZE_PREFIX as SIZE_PREFIX
from .layout import CeleryLayout, once_key, queues_of_binding
from .translate import Incoming, NotATask, from_kombu, parse, task_name_of

log = logging.getLogger("celery_docket.cutover")


#: how long a moved (task id, retries) keeps its copies out. kombu's own hand-overs (restore
#: of reserved messages, warm shutdown) race with our HDEL/LREM atomically and cannot
#: duplicate; the token is for a message published twice, so an hour is plenty and a busy
#: deployment keeps only an hour's worth of tokens
ONCE_TTL_MS = 3600 * 1000


@dataclass
class Tally:
    """What one pass did, per queue and per task name."""

    moved: Counter[str] = field(default_factory=Counter)
    by_task: Counter[str] = field(default_factory=Counter)
    parked: int = 0
    duplicates: int = 0
    gone: int = 0
    refused: int = 0
    unreadable: int = 0

    @property
    def total(self) -> int:
        return sum(self.moved.values())

    def add(self, other: Tally) -> None:
        self.moved.update(other.moved)
        self.by_task.update(other.by_task)
        self.parked += other.parked
        self.duplicates += other.duplicates
        self.gone += other.gone
        self.refused += other.refused
        self.unreadable += other.unreadable


@dataclass
class Census:
    """What waits in Celery's structures (the dry run): per queue, per kind, per task."""

    ready: Counter[str] = field(default_factory=Counter)
    eta: Counter[str] = field(default_factory=Counter)
    orphaned: Counter[str] = field(default_factory=Counter)
    reserved: Counter[str] = field(default_factory=Counter)
    by_task: Counter[str] = field(default_factory=Counter)

    def movable(self, queue: str | None = None) -> int:
        if queue is None:
            return sum(self.ready.values()) + sum(self.orphaned.values())
        return self.ready[queue] + self.orphaned[queue]


class Mover:
    """Moves one Celery deployment's messages into one app's engine namespace."""

    def __init__(
        self,
        app: Any,
        *,
        docket: Docket | None = None,
        layout: CeleryLayout | None = None,
        unacked_age: float | None = None,
        batch: int = 200,
    ) -> None:
        conf = app.conf
        self.app = app
        options = conf.get("broker_transport_options") or {}
        self.layout = layout or CeleryLayout.from_options(options)
        age = conf.get("docket_celery_unacked_age") if unacked_age is None else unacked_age
        self.unacked_age = float(self.layout.visibility_timeout if age is None else age)
        self.docket = docket or Docket(
            app.broker_url, prefix=conf.get("docket_key_prefix") or "cd", max_connections=4
        )
        self.redis: Any = self.docket.redis
        self.accept = conf.get("accept_content") or ("json",)
        self.batch = batch
        self._bindings: dict[str, list[bytes]] = {}
        self._bindings_read = 0.0

    # -- where things are ----------------------------------------------------------------

    def celery_queues(self) -> list[str]:
        """Queue names Celery's bindings know (pidbox and event queues left out)."""
        names: set[str] = set()
        for key in self.redis.scan_iter(match=self.layout.binding("*"), count=500):
            for member in self.redis.smembers(key):
                parts = member.decode("utf-8", "replace").split("\x06\x16")
                if len(parts) == 3 and parts[2]:
                    names.add(parts[2])
        return sorted(n for n in names if not _is_control_queue(n))

    def _queue_of(self, exchange: str, routing_key: str, message: dict[str, Any]) -> str:
        if not exchange:
            return routing_key
        if time.monotonic() - self._bindings_read > 30:
            self._bindings.clear()
            self._bindings_read = time.monotonic()
        if exchange not in self._bindings:
            self._bindings[exchange] = list(self.redis.smembers(self.layout.binding(exchange)))
        queues = queues_of_binding(self._bindings[exchange], routing_key)
        return queues[0] if queues else routing_key

    def ready_counts(self, queues: Iterable[str]) -> dict[str, int]:
        """Messages waiting in each queue's lists (every priority step), one round trip."""
        queues = list(queues)
        pipe = self.redis.pipeline(transaction=False)
        for q in queues:
            for name in self.layout.queue_lists(q):
                pipe.llen(name)
        sizes = pipe.execute()
        steps = len(self.layout.priority_steps)
        return {q: int(sum(sizes[i * steps : (i + 1) * steps])) for i, q in enumerate(queues)}

    def _unacked(self) -> Iterable[tuple[str, float, str, dict[str, Any]]]:
        """(delivery tag, reserved at, queue, message) of every reserved message."""
        scores = {
            t.decode(): float(s)
            for t, s in self.redis.zrange(self.layout.unacked_index, 0, -1, withscores=True)
        }
        for tag, raw in self.redis.hscan_iter(self.layout.unacked, count=500):
            try:
                message, exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            name = tag.decode()
            queue = self._queue_of(exchange or "", routing_key or "", message)
            yield name, scores.get(name, 0.0), queue, message

    def census(self, queues: Iterable[str]) -> Census:
        """Count what waits (the dry run). Reads every message; changes nothing."""
        queues = list(queues)
        out = Census()
        for q in queues:
            for name in self.layout.queue_lists(q):
                for start in range(0, int(self.redis.llen(name)), 1000):
                    for raw in self.redis.lrange(name, start, start + 999):
                        self._count(out, q, raw, out.ready)
        ceil = time.time() - self.unacked_age
        served = set(queues)
        for _tag, at, q, message in self._unacked():
            if q in served:
                self._count(out, q, message, out.orphaned if at <= ceil else out.reserved)
        return out

    def _count(self, out: Census, queue: str, raw: Any, where: Counter[str]) -> None:
        try:
            payload = raw if isinstance(raw, dict) else parse(raw)
        except NotATask:
            where[queue] += 1
            out.by_task["<not a task>"] += 1
            return
        where[queue] += 1
        out.by_task[task_name_of(payload, self.accept)] += 1
        if (payload.get("headers") or {}).get("eta"):
            out.eta[queue] += 1

    # -- moving ----------------------------------------------------------------------------

    def drain(
        self,
        queues: Iterable[str],
        *,
        unacked: bool = True,
        limit: int | None = None,
        progress: Callable[[Tally], None] | None = None,
    ) -> Tally:
        """Move ready messages (then orphaned reserved ones) of ``queues``; returns the tally.

        Stops when the lists are empty or ``limit`` messages were handled.
        """
        queues = list(queues)
        total = Tally()
        for q in queues:
            for name in self.layout.queue_lists(q):
                skip = 0
                while limit is None or total.total < limit:
                    raws = self.redis.lrange(name, -(skip + self.batch), -(skip + 1))
                    if not raws:
                        break
                    items = [("list", name, name, raw, q) for raw in reversed(raws)]
                    tally = self._move(items, 0.0)
                    total.add(tally)
                    if progress is not None:
                        progress(total)
                    # entries we cannot take stay: look past them next time
                    skip += tally.refused + tally.unreadable
                    if len(raws) < self.batch and not tally.total and not tally.duplicates:
                        break
        if unacked:
            total.add(self.drain_unacked(queues, progress=progress, base=total))
        return total

    def drain_unacked(
        self,
        queues: Iterable[str],
        *,
        full: bool = True,
        progress: Callable[[Tally], None] | None = None,
        base: Tally | None = None,
    ) -> Tally:
        """Move reserved messages older than ``unacked_age`` whose queue we serve.

        ``full`` reads the whole ``unacked`` hash (``migrate``: an entry kombu lost from the
        index is taken too); otherwise only what the index says is old enough is read, so a
        worker's periodic pass costs one range read when nothing is orphaned.
        """
        served = set(queues)
        ceil = time.time() - self.unacked_age
        tally = Tally()
        items: list[tuple[str, str, str, Any, str]] = []

        def flush() -> None:
            tally.add(self._move(items, ceil))
            items.clear()
            if progress is not None:
                progress(_sum(base, tally))

        if full:
            for tag, at, q, message in self._unacked():
                if q in served and at <= ceil:
                    entry = (tag, message)
                    items.append(
                        ("unacked", self.layout.unacked, self.layout.unacked_index, entry, q)
                    )
                if len(items) >= self.batch:
                    flush()
            if items:
                flush()
            return tally
        offset = 0
        while True:
            tags = self.redis.zrangebyscore(
                self.layout.unacked_index, "-inf", ceil, start=offset, num=self.batch
            )
            if not tags:
                return tally
            for tag, raw in zip(tags, self.redis.hmget(self.layout.unacked, tags), strict=True):
                try:
                    message, exchange, routing_key = json.loads(raw)
                except (ValueError, TypeError):
                    continue  # no longer there (acked meanwhile), or not kombu's
                q = self._queue_of(exchange or "", routing_key or "", message)
                if q in served:
                    entry = (tag.decode(), message)
                    items.append(
                        ("unacked", self.layout.unacked, self.layout.unacked_index, entry, q)
                    )
            before = tally.total + tally.duplicates
            if items:
                flush()
            # what moved left the index: the next page starts that much earlier
            offset += len(tags) - (tally.total + tally.duplicates - before)

    def _move(self, items: list[tuple[str, str, str, Any, str]], ceil: float) -> Tally:
        """One pipeline of take-and-add scripts for ``items`` (kind, src, index, entry, queue)."""
        tally = Tally()
        steps = handover.batch(self.docket)
        sent: list[tuple[Incoming, str]] = []
        for kind, src, idx, entry, q in items:
            if kind == "list":
                raw, token = entry, entry
                try:
                    payload = parse(raw)
                except NotATask as exc:
                    tally.unreadable += 1
                    log.warning("left in Celery's list %s: %s", src, exc)
                    continue
            else:
                token, payload = entry
            try:
                incoming = from_kombu(payload, self.accept, q)
            except ContentDisallowed as exc:
                tally.refused += 1
                log.warning("left in Celery's %s: %s", q, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a message that cannot be read is left in place and counted
                tally.unreadable += 1
                log.warning("left in Celery's %s: unreadable message: %s", q, exc)
                continue
            source = (
                handover.ForeignItem("list", src, token)
                if kind == "list"
                else handover.ForeignItem("indexed", src, token, index=idx, max_score=ceil)
            )
            steps.take(
                source,
                queue=q,
                execution_id=incoming.task_id,
                function=incoming.name,
                body=incoming.message.encode(),
                when_ms=to_epoch_ms(incoming.eta),
                once=once_key(self.docket.prefix, incoming.task_id, incoming.retries),
                once_ttl_ms=ONCE_TTL_MS,
            )
            sent.append((incoming, q))
        if not sent:
            return tally
        groups: set[str] = set()
        for (incoming, q), status in zip(sent, steps.execute(), strict=True):
            if status == "gone":
                tally.gone += 1
                continue
            if status == "exists":
                tally.duplicates += 1
                continue
            tally.moved[q] += 1
            tally.by_task[incoming.name] += 1
            tally.parked += status == "parked"
            group = incoming.message.headers.get("group")
            if group:
                groups.add(str(group))
        if groups:
            self._sync_chord_sizes(groups)
        return tally

    def _sync_chord_sizes(self, groups: set[str]) -> None:
        """A chord sent by Celery recorded its size in Celery's result backend: copy it to
        ours (once) so our workers fire its body. Results Celery's workers already joined
        are not carried over: a chord whose header was split across both fleets is not
        completed by either (see MIGRATING.md)."""
        results = self.app.results.backend.client
        groups_sorted = sorted(groups)
        sizes = results.mget([self.layout.chord_size_key(g) for g in groups_sorted])
        pipe = results.pipeline(transaction=False)
        for g, size in zip(groups_sorted, sizes, strict=True):
            if size is not None:
                pipe.set(f"{SIZE_PREFIX}{g}", size, nx=True, px=self.app.result_ttl_ms() or None)
        pipe.execute()


def _sum(base: Tally | None, tally: Tally) -> Tally:
    out = Tally()
    if base is not None:
        out.add(base)
    out.add(tally)
    return out


def _is_control_queue(name: str) -> bool:
    return name.endswith(".pidbox") or name.startswith("celeryev.") or ".reply." in name
