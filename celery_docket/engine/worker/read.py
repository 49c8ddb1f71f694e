"""The reader loop: ``XREADGROUP`` in batches, decoded one entry at a time.

The reader is the thread that called ``Worker.run``. With ``solo`` it runs what it read
inline (``execute.Executing._run_solo``); with ``threads`` it waits for a free slot and hands
each delivery to an executor thread. An entry that cannot be decoded is dead-lettered on its
own; its batch-mates run.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from ..keys import GROUP
from ..messages import Delivery, Outcome, decode_entry
from .state import RECOVERABLE, WorkerState, log, text


class Reading(WorkerState):
    """The reader's part of ``Worker``."""

    def _delivery(self, queue: str, mid: str, fields: dict[bytes, bytes]) -> Delivery | None:
        try:
            d = decode_entry(queue, mid, fields)
        except (KeyError, ValueError, UnicodeDecodeError, TypeError) as exc:
            self._dead_letter_malformed(queue, mid, fields, f"malformed entry: {exc!r}")
            return None
        d.received_at = time.time()
        d.worker = self.consumer
        return d

    def _dead_letter_malformed(
        self, queue: str, mid: str, fields: dict[bytes, bytes], reason: str
    ) -> None:
        log.error("worker: dead-lettering %s on %s: %s", mid, queue, reason)
        raw = (
            b"json:"
            + json.dumps({_lossy(k): _lossy(v) for k, v in (fields or {}).items()}).encode()
        )
        d = Delivery(queue, mid, "?", "?", raw, 1, False, "", False, worker=self.consumer)
        self._commit([(d, Outcome.dead(reason))])

    def _read(self, count: int) -> list[Delivery]:
        streams = {k.stream: ">" for q, k in self.keys.items() if q not in self._paused}
        self._read_started = time.monotonic()
        if not streams:
            self._stopping.wait(self.settings.block_ms / 1000.0)
            return []
        block = None if self.docket.backend.is_memory else self.settings.block_ms
        try:
            if self.docket.backend.is_cluster and len(streams) > 1:
                reply = self._read_slots(streams, count, block)
            else:
                reply = self.redis.xreadgroup(
                    GROUP, self.consumer, streams, count=count, block=block
                )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                log.warning("worker: consumer group missing (Redis lost data?); recreating")
                for q in self.keys:
                    self.docket.ensure_group(q)
                return []
            raise
        out: list[Delivery] = []
        by_stream = {k.stream: q for q, k in self.keys.items()}
        for stream, entries in reply or []:
            q = by_stream[text(stream)]
            for mid, fields in entries:
                if fields is None:
                    continue
                d = self._delivery(q, text(mid), fields)
                if d is not None:
                    out.append(d)
        if self._paused:  # paused while this read was blocked: give those back at once
            late = [d for d in out if d.queue in self._paused]
            if late:
                self._hand_back(late)
                out = [d for d in out if d.queue not in self._paused]
        if not out and self.docket.backend.is_memory:
            self.docket.backend.wait_local(self.settings.block_ms / 1000.0)
        return out

    def _read_slots(self, streams: dict[str, str], count: int, block: int | None) -> Any:
        """Cluster: one XREADGROUP may name streams of one slot only. Read every queue at
        once (a pipeline, split per node); when all are empty, block on one queue, taking
        them in turn, for a share of the block time, so each is looked at within about
        ``block_ms``."""
        names = list(streams)
        turn = getattr(self, "_read_turn", 0) % len(names)
        self._read_turn = turn + 1
        order = names[turn:] + names[:turn]
        shares = [
            count // len(order) + (1 if i < count % len(order) else 0) for i in range(len(order))
        ]
        pipe = self.redis.pipeline(transaction=False)
        for name, share in zip(order, shares, strict=True):
            if share:  # the shares add up to ``count``: never more than the free slots
                pipe.xreadgroup(GROUP, self.consumer, {name: ">"}, count=share)
        found = [r for rs in pipe.execute() for r in (rs or [])]
        if found or block is None:
            return found
        wait = max(50, block // len(names))
        return self.redis.xreadgroup(GROUP, self.consumer, {order[0]: ">"}, count=count, block=wait)

    def _reader_loop(self) -> None:
        batch_size = self.settings.batch_size()
        size = batch_size
        backoff = 0.1
        if not self.settings.consume:
            self._stopping.wait()
            return
        while not self.stopping:
            if self.settings.max_tasks and self.processed >= self.settings.max_tasks:
                log.info("worker: reached max tasks (%d), exiting", self.settings.max_tasks)
                break
            try:
                if self.settings.pool == "solo":
                    batch = self._take_work(size) or self._read(size)
                    if batch:
                        started = time.monotonic()
                        self._run_solo(batch)
                        size = self._next_batch_size(size, len(batch), started)
                else:
                    self._slots.acquire()
                    self._slots.release()
                    free = self._free_slots()
                    batch = self._take_work(free) or self._read(min(batch_size, free))
                    for d in batch:
                        self._slots.acquire()
                        self._track_batch([d])
                        self._work.put(d)
                backoff = 0.1
            except RECOVERABLE as exc:
                log.warning("worker: Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _next_batch_size(self, size: int, got: int, started: float) -> int:
        """Adaptive prefetch for the solo pool: while full batches finish within a few ms,
        read twice as many (up to 256) to save round trips; once a batch is slow, fall back
        to the configured prefetch so long tasks do not sit behind each other."""
        base = self.settings.batch_size()
        if time.monotonic() - started > 0.01:
            return base
        if got >= size:
            return min(256, max(base, size * 2))
        return size

    def _free_slots(self) -> int:
        with self._inflight_lock:
            return max(1, self.settings.concurrency - len(self._inflight))


def _lossy(value: Any) -> str:
    """Text of a field that may not be UTF-8 (a malformed entry must still be recorded)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
