"""Committing outcomes: all finished outcomes in one round trip, each with its ack.

The committer thread takes every outcome that is ready (threads: from the executors; solo:
from the reader, as soon as each task returns) and commits them together; a commit is
retried until Redis takes it, never dropped. On Redis Cluster results are committed into
the queue's outbox and copied to their keys right after (``outbox``).
"""

from __future__ import annotations

import time
from typing import Any

from ..entries import CommitEntry, FastAck
from ..keys import GROUP
from ..lua import Pipeline
from ..messages import Delivery, Outcome
from ..outbox import Pending, deliver
from .state import RECOVERABLE, WorkerState, log


class Committing(WorkerState):
    """The committer's part of ``Worker``."""

    def _committer_loop(self) -> None:
        while True:
            with self._outcome_ready:
                while not self._outcomes:
                    if self._stopped.is_set():
                        return
                    self._outcome_ready.wait(0.5)
                done = list(self._outcomes)
                self._outcomes.clear()
            self._commit_with_retry(done)
            if self.settings.pool == "threads":
                for _ in done:
                    self._slots.release()
            self.docket.backend.notify()

    def _commit_with_retry(self, done: list[tuple[Delivery, Outcome]]) -> None:
        """Commit until Redis takes it: outcomes are never dropped on a connection error."""
        backoff = 0.1
        while done:
            try:
                self._commit(done)
                return
            except RECOVERABLE as exc:
                log.warning("worker: commit failed (%s); retrying in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _commit(self, done: list[tuple[Delivery, Outcome]]) -> None:
        """Commit outcomes with their acks in one round trip.

        Plain acks of unkeyed entries read less than half a lease ago take the fast script
        (no other worker can own them yet; XACK's answer fences double commits). Everything
        else, and anything older, takes the full script that checks the entry is still
        pending under this consumer's name.
        """
        safe_before = time.monotonic() - self.settings.lease_seconds / 2.0
        fast: dict[str, list[tuple[Delivery, Outcome]]] = {}
        full: dict[str, list[tuple[Delivery, Outcome, bool]]] = {}
        with self._inflight_lock:
            for d, o in done:
                flight = self._inflight.get(d.message_id)
                early = flight is not None and flight.early_acked
                recent = flight is not None and flight.started > safe_before
                if o.action == "ack" and not d.keyed and recent and not early and d.fate is None:
                    fast.setdefault(d.queue, []).append((d, o))
                else:
                    full.setdefault(d.queue, []).append((d, o, not early))
        cluster = self.docket.backend.is_cluster
        pipe = Pipeline(self.redis)
        order: list[list[tuple[Delivery, Outcome]]] = []
        for q, items in fast.items():
            k = self.keys.get(q) or self.docket.keys(q)
            args: list[str | bytes | int | float] = [GROUP]
            for d, o in items:
                args += FastAck.of(d, o)
            pipe.script(self._ack_fast, [k.stream, k.outbox] if cluster else [k.stream], args)
            order.append(items)
        for q, entries in full.items():
            k = self.keys.get(q) or self.docket.keys(q)
            args = [GROUP, self.consumer, k.run_prefix, k.wake, q]
            for d, o, fence in entries:
                args += CommitEntry.of(d, o, fence=fence)
            keys = [k.stream, k.due, k.dead]
            pipe.script(self._complete, [*keys, k.outbox] if cluster else keys, args)
            order.append([(d, o) for d, o, _f in entries])
        fated = [d for d, _o in done if d.fate is not None]
        for d in fated:
            k = self.keys.get(d.queue) or self.docket.keys(d.queue)
            pipe.command("hdel", k.fates, d.message_id)
        replies = pipe.execute()[: len(order)]
        with self._inflight_lock:
            for d, _o in done:
                self._inflight.pop(d.message_id, None)
                self._ran.discard(d.message_id)
        if cluster:
            self._copy_results(order, replies)
        hooks = self.hooks
        watched = bool(hooks.after_commit or hooks.after_retry or hooks.after_dead_letter)
        for items, reply in zip(order, replies, strict=True):
            for (d, o), committed in zip(items, reply, strict=True):
                ok = bool(int(committed))
                if not ok:
                    log.warning(
                        "worker: outcome of %s not committed: its lease expired and another "
                        "worker took it over",
                        d.execution_id,
                    )
                elif o.action == "dead":
                    log.error("worker: %s dead-lettered: %s", d.execution_id, o.reason)
                if watched:
                    self._after_commit(d, o, ok)
        if any(o.action == "again" for _d, o in done):
            self.docket.backend.notify()

    def _copy_results(
        self, order: list[list[tuple[Delivery, Outcome]]], replies: list[Any]
    ) -> None:
        """Cluster: copy the results just committed into outboxes to their own keys. A
        failure leaves them in the outbox for a keeper's sweep; the commit itself stands."""
        items: list[Pending] = []
        for batch, reply in zip(order, replies, strict=True):
            for (d, o), committed in zip(batch, reply, strict=True):
                r = o.result
                if r is not None and int(committed):
                    outbox = (self.keys.get(d.queue) or self.docket.keys(d.queue)).outbox
                    ttl = max(0, int(r.ttl_ms))
                    items.append(Pending(outbox, r.key, r.value, ttl, d.message_id))
        try:
            deliver(self.redis, items)
        except RECOVERABLE as exc:
            log.warning("worker: result copy failed (%s); the keeper's sweep finishes it", exc)

    def _after_commit(self, d: Delivery, o: Outcome, committed: bool) -> None:
        hooks = self.hooks
        if hooks.after_commit:
            hooks.fire("after_commit", self, d, o, committed)
        if committed and o.action == "again" and hooks.after_retry:
            hooks.fire("after_retry", self, d, o)
        elif committed and o.action == "dead" and hooks.after_dead_letter:
            hooks.fire("after_dead_letter", self, d, o)

    def _hand_back(self, deliveries: list[Delivery]) -> None:
        """Return read-but-unstarted entries to the stream for other workers."""
        by_queue: dict[str, list[str]] = {}
        for d in deliveries:
            by_queue.setdefault(d.queue, []).append(d.message_id)
        for q, mids in by_queue.items():
            k = self.keys[q]
            try:
                self._handback(self.redis, [k.stream], [GROUP, self.consumer, k.run_prefix, *mids])
            except RECOVERABLE as exc:
                log.warning("worker: hand-back failed (%s); entries wait for lease expiry", exc)
        with self._inflight_lock:
            for d in deliveries:
                self._inflight.pop(d.message_id, None)
                self._ran.discard(d.message_id)
