"""A worker process's consumer: read in batches, run, commit outcomes with their acks.

One ``Worker`` is one consumer in the ``workers`` group of each queue it serves. Threads, each
a loop in its own module of this package:

* the reader (the caller of ``run``, ``read.py``) reads batches with ``XREADGROUP`` and runs
  them inline (``solo``) or hands them to executor threads (``threads``, ``execute.py``);
* the committer (``commit.py``) commits finished outcomes, all that are ready in one round
  trip, so a finished task frees its slot and wakes the reader at once, and (``solo``) its
  result never waits behind the next task;
* the mover (``move.py``) moves due work from the sorted set to the stream, sleeping in the
  client until the earliest due time (Redis's clock), woken early by a pub/sub notice;
* the keeper (``keep.py``) renews leases of long-running deliveries, refreshes the heartbeat,
  reclaims entries whose lease expired, and re-asserts automatic perpetual executions.

This module holds the public face (start, stop, queues, signals) and startup and shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable

import redis

from ..client import Client
from ..hooks import Hook
from ..keys import GROUP, heartbeat_key
from ..messages import Call, Delivery, Outcome
from .commit import Committing
from .execute import Executing
from .keep import LeaseKeeping, workers_key
from .move import Moving
from .read import Reading
from .settings import Handler, PerpetualSpec, WorkerSettings
from .state import RECOVERABLE, log, text


class Worker(Reading, Executing, Committing, Moving, LeaseKeeping):
    """Consume the configured queues until ``stop()`` (or SIGTERM) is requested."""

    def __init__(
        self,
        docket: Client,
        handler: Handler,
        settings: WorkerSettings | None = None,
        *,
        perpetuals: Iterable[PerpetualSpec] = (),
        hooks: Iterable[Hook] = (),
        acks_early: Callable[[Delivery], bool] | None = None,
        give_up: Callable[[Delivery, str], Outcome] | None = None,
    ) -> None:
        """``hooks`` watch the lifecycle (``engine/hooks.py``). ``acks_early`` decides which
        deliveries are acked before they run (at-most-once); ``give_up`` decides the outcome
        of a message delivered more than ``max_deliveries`` times (default: dead-letter)."""
        super().__init__(docket, handler, settings, perpetuals, hooks)
        self._acks_early = acks_early
        self._give_up = give_up

    # -- public ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop fetching; in-flight work finishes and commits, unstarted work is handed back."""
        self._stopping.set()
        self.docket.backend.notify()

    @property
    def stopped(self) -> bool:
        """True once the worker has shut down (or never ran and was told to stop)."""
        return self._stopped.is_set()

    def consuming(self) -> list[str]:
        """The queues this worker reads from now."""
        return [q for q in self.keys if q not in self._paused]

    def add_queue(self, queue: str) -> None:
        """Start (or resume) consuming ``queue`` (every shard of a sharded one)."""
        for q in self.docket.shard_queues(queue):
            if q not in self.keys:
                self.docket.ensure_group(q)
                self.keys = {**self.keys, q: self.docket.keys(q)}
            self._paused.discard(q)
        self.docket.backend.notify()

    def pause_queue(self, queue: str) -> None:
        """Stop reading ``queue``; what was already delivered from it finishes normally."""
        for q in self.docket.shard_queues(queue):
            if q in self.keys:
                self._paused.add(q)

    def deliveries(self) -> list[tuple[Delivery, float | None]]:
        """Every delivery held now and not finished, with the wall-clock time its handler
        started (None: delivered but not started yet)."""
        with self._inflight_lock:
            held = [
                f.delivery
                for f in self._inflight.values()
                if f.delivery.message_id not in self._ran
            ]
            running = dict(self._running)
        return [(d, running.get(d.message_id)) for d in held]

    def beat_heart(self) -> None:
        """Write the heartbeat now (it is also written every third of a lease)."""
        self._beat_heart()

    def install_signal_handlers(self, *, child: bool = False) -> None:
        """SIGTERM/SIGINT stop the worker gracefully; a second one, or SIGQUIT, at once.

        The cold shutdown (Celery's second Ctrl-C) abandons the running tasks without
        committing them: their leases lapse and they are delivered again, as after a crash.
        A prefork ``child`` ignores SIGINT: a terminal's Ctrl-C reaches the whole process
        group, and the supervisor alone decides (it sends SIGTERM, or SIGKILL when cold).
        """

        def _stop(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            if signum == signal.SIGQUIT or self.stopping:
                self._cold_exit(name)
            if child:
                log.debug("worker: received %s, shutting down gracefully", name)
            else:
                log.warning(
                    "worker: received %s, shutting down gracefully (waits for running tasks; "
                    "%s again stops at once)",
                    name,
                    "Ctrl-C" if signum == signal.SIGINT else name,
                )
            self.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGQUIT, _stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN if child else _stop)

    def _cold_exit(self, signame: str) -> None:
        """Exit now: running tasks are not waited for (their leases lapse; redelivered)."""
        log.warning(
            "worker: received %s during shutdown: cold shutdown, abandoning %d running "
            "task(s); they run again once their lease expires",
            signame,
            len(self._running),
        )
        logging.shutdown()
        os._exit(1)

    def run(self) -> None:
        """Consume until stopped. Returns after a clean shutdown."""
        self.started_at = time.time()
        self._prepare()
        self._start_thread(self._mover_loop, "docket-mover")
        self._start_thread(self._keeper_loop, "docket-keeper")
        self._start_thread(self._committer_loop, "docket-committer")
        if self.settings.pool == "threads":
            for i in range(self.settings.concurrency):
                self._start_thread(self._executor_loop, f"docket-exec-{i}")
        self.ready.set()
        if self.hooks.on_worker_start:
            self.hooks.fire("on_worker_start", self)
        try:
            self._reader_loop()
        finally:
            self._shutdown()

    # -- startup -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create groups, take over what a dead earlier incarnation of this node held."""
        while not self.stopping:
            try:
                for q in self.keys:
                    self.docket.ensure_group(q)
                self._beat_heart()
                self._adopt_own_orphans()
                self._forget_dead_predecessors()
                self._assert_perpetuals()
                return
            except RECOVERABLE as exc:
                log.warning("worker: Redis unavailable at startup (%s); retrying", exc)
                self._stopping.wait(1.0)

    def _assert_perpetuals(self) -> None:
        if not self.perpetuals:
            return
        now = int(time.time() * 1000 + self.clock_offset_ms)
        calls = [
            Call(
                p.function,
                p.body,
                queue=p.queue,
                key=p.key,
                when=None if p.first_when_ms is None else p.first_when_ms(now) / 1000.0,
                perpetual=True,
            )
            for p in self.perpetuals
        ]
        added = [e for e in self.docket.enqueue_many(calls) if e.added]
        if added:
            log.info("worker: scheduled %d perpetual executions", len(added))

    # -- shutdown ----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self.settings.pool == "threads":
            for _ in range(self.settings.concurrency):
                self._work.put(None)
            for t in self._threads:
                if t.name.startswith("docket-exec-"):
                    t.join()
        self._stopped.set()
        self._stopping.set()
        with self._outcome_ready:
            self._outcome_ready.notify_all()
        for t in self._threads:
            if t.name == "docket-committer":
                t.join()
        leftovers = self._take_reclaimed(len(self._reclaimed))
        if leftovers:
            self._hand_back(leftovers)
        try:
            self.redis.delete(heartbeat_key(self.docket.prefix, self.consumer))
            self.redis.zrem(workers_key(self.docket.prefix), self.consumer)
            for k in self.keys.values():
                info = [
                    c
                    for c in self.redis.xinfo_consumers(k.stream, GROUP)
                    if text(c["name"]) == self.consumer
                ]
                if info and not int(info[0].get("pending", 0)):
                    self.redis.xgroup_delconsumer(k.stream, GROUP, self.consumer)
        except (redis.RedisError, OSError) as exc:
            log.warning("worker: could not tidy up on shutdown (%s)", exc)
        if self._loop is not None:
            self._close_loop(self._loop)
        log.info("worker: %s stopped after %d tasks", self.consumer, self.processed)
        if self.hooks.on_worker_stop:
            self.hooks.fire("on_worker_stop", self)

    def _close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop the coroutine handlers' loop, wait for its thread, and close it (its selector
        and self-pipe sockets are freed now, not whenever the collector gets to them)."""
        loop.call_soon_threadsafe(loop.stop)
        for t in self._threads:
            if t.name == "docket-asyncio":
                t.join(timeout=5)
                if t.is_alive():
                    log.warning("worker: the asyncio loop did not stop; left open")
                    return
        loop.close()
        self._loop = None


__all__ = ["Handler", "PerpetualSpec", "Worker", "WorkerSettings", "workers_key"]
