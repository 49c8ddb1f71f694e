"""A worker process's consumer: read in batches, run, commit outcomes with their acks.

One ``Worker`` is one consumer in the ``workers`` group of each queue it serves. Threads:

* the reader (the caller of ``run``) reads batches with ``XREADGROUP`` and runs them inline
  (``solo``) or hands them to executor threads (``threads``);
* the committer commits finished outcomes, all that are ready in one round trip, so a
  finished task frees its slot and wakes the reader at once, and (``solo``) its result
  never waits behind the next task;
* the mover moves due work from the sorted set to the stream, sleeping in the client until
  the earliest due time (Redis's clock), woken early by a pub/sub notice;
* the keeper renews leases of long-running deliveries, refreshes the heartbeat, reclaims
  entries whose lease expired, and re-asserts automatic perpetual executions.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import queue as queue_mod
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from .commit import Committing
from .docket import Call, Docket
from .keys import GROUP, QueueKeys, heartbeat_key
from .lease import RECOVERABLE, InFlight, LeaseKeeping, text, workers_key
from .lua import Pipeline, Script
from .messages import Delivery, Outcome, decode_entry
from .scripts import ACK_FAST, COMPLETE, HANDBACK, MOVE, RENEW

log = logging.getLogger("celery_docket.engine.worker")


Handler = Callable[[Delivery], "Outcome | Awaitable[Outcome]"]
Pool = Literal["solo", "threads"]

_RECOVERABLE = RECOVERABLE


@dataclass
class PerpetualSpec:
    """An execution that must always exist: re-added (idempotently) by every worker."""

    key: str
    function: str
    body: bytes
    queue: str = "default"
    first_when_ms: Callable[[int], int] | None = None
    """Given Redis's now in ms, when the first run is due (None: now)."""


@dataclass
class WorkerSettings:
    queues: list[str] = field(default_factory=lambda: ["default"])
    name: str = ""
    pool: Pool = "threads"
    concurrency: int = 4
    prefetch: int = 0
    """Messages read per batch; 0 means ``max(4, 4 * concurrency)`` capped at 256."""
    lease_seconds: float = 30.0
    max_deliveries: int = 5
    acks_late: bool = True
    block_ms: int = 1000
    move_batch: int = 500
    perpetual_refresh_seconds: float = 60.0
    max_tasks: int = 0
    """Stop after this many tasks (prefork children recycle this way); 0: never."""
    consume: bool = True
    """False: a scheduling-only process (moves due work, keeps perpetuals alive, runs none)."""

    def batch_size(self) -> int:
        if self.prefetch > 0:
            return self.prefetch
        return min(256, max(4, 4 * self.concurrency))


class Worker(LeaseKeeping, Committing):
    """Consume the configured queues until ``stop()`` (or SIGTERM) is requested."""

    def __init__(
        self,
        docket: Docket,
        handler: Handler,
        settings: WorkerSettings | None = None,
        *,
        perpetuals: Iterable[PerpetualSpec] = (),
        acks_early: Callable[[Delivery], bool] | None = None,
        on_started: Callable[[Worker], None] | None = None,
        on_task_start: Callable[[Delivery], None] | None = None,
        on_task_end: Callable[[Delivery], None] | None = None,
        give_up: Callable[[Delivery, str], Outcome] | None = None,
        on_committed: Callable[[Delivery, Outcome, bool], None] | None = None,
    ) -> None:
        self.docket = docket
        self.handler = handler
        self.settings = settings or WorkerSettings()
        self.perpetuals = list(perpetuals)
        self._acks_early = acks_early
        self._on_started = on_started
        self._on_task_start = on_task_start
        self._on_task_end = on_task_end
        self._give_up = give_up
        self._on_committed = on_committed
        base = self.settings.name or f"docket@{socket.gethostname()}"
        self.node = base
        self.consumer = f"{base}:{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.keys = {q: docket.keys(q) for q in self.settings.queues}
        self.redis: Any = docket.redis
        self._complete = Script(COMPLETE)
        self._ack_fast = Script(ACK_FAST)
        self._renew = Script(RENEW)
        self._handback = Script(HANDBACK)
        self._move = Script(MOVE)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._inflight: dict[str, InFlight] = {}
        self._inflight_lock = threading.Lock()
        self._reclaimed: deque[Delivery] = deque()
        self._waiting: set[str] = set()
        self._reclaim_lock = threading.Lock()
        self._reclaim_cursor: dict[str, str] = {}
        self._reclaim_more = False
        self._outcomes: deque[tuple[Delivery, Outcome]] = deque()
        self._outcome_ready = threading.Condition()
        self._slots = threading.Semaphore(self.settings.concurrency)
        self._work: queue_mod.SimpleQueue[Delivery | None] = queue_mod.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self.clock_offset_ms = 0.0
        self._read_started = time.monotonic()
        self.processed = 0
        self.started_at = 0.0
        self.ready = threading.Event()
        self.heartbeat_extra: Callable[[], dict[str, Any]] | None = None
        """Called at each heartbeat; its items are added to the heartbeat payload."""
        self._running: dict[str, float] = {}
        self._ran: set[str] = set()
        """Message ids whose handler returned and whose outcome is not committed yet."""
        self._paused: set[str] = set()

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
        """Start (or resume) consuming ``queue``."""
        if queue not in self.keys:
            self.docket.ensure_group(queue)
            self.keys = {**self.keys, queue: self.docket.keys(queue)}
        self._paused.discard(queue)
        self.docket.backend.notify()

    def pause_queue(self, queue: str) -> None:
        """Stop reading ``queue``; what was already delivered from it finishes normally."""
        if queue in self.keys:
            self._paused.add(queue)

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
        if self._on_started is not None:
            self._on_started(self)
        try:
            self._reader_loop()
        finally:
            self._shutdown()

    # -- startup -----------------------------------------------------------------------------

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

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
            except _RECOVERABLE as exc:
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

    # -- reading -----------------------------------------------------------------------------

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
            reply = self.redis.xreadgroup(GROUP, self.consumer, streams, count=count, block=block)
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
            q = by_stream[_text(stream)]
            for mid, fields in entries:
                if fields is None:
                    continue
                d = self._delivery(q, _text(mid), fields)
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
                        self._track(d)
                        self._work.put(d)
                backoff = 0.1
            except _RECOVERABLE as exc:
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

    # -- running -----------------------------------------------------------------------------

    def _track(self, d: Delivery) -> None:
        self._track_batch([d])

    def _track_batch(self, batch: list[Delivery]) -> None:
        """Remember entries until their commit; ``started`` is taken before the read that
        delivered them, so ``now - started`` never understates their idle time."""
        started = self._read_started
        with self._inflight_lock:
            for d in batch:  # reclaimed entries are held already, since their claim
                self._inflight.setdefault(d.message_id, InFlight(d, started))

    def _ack_early(self, batch: list[Delivery]) -> None:
        """At-most-once deliveries are acked before they run."""
        early = [d for d in batch if self._acks_early is not None and self._acks_early(d)]
        if not early:
            return
        pipe = self.redis.pipeline(transaction=False)
        for d in early:
            stream = self.keys[d.queue].stream
            pipe.xack(stream, GROUP, d.message_id)
            pipe.xdel(stream, d.message_id)
        pipe.execute()
        with self._inflight_lock:
            for d in early:
                flight = self._inflight.get(d.message_id)
                if flight is not None:
                    flight.early_acked = True

    def _run_solo(self, batch: list[Delivery]) -> None:
        """Run a batch inline; each outcome goes to the committer thread as soon as it is
        known, so a finished result never waits behind the next (slow) task, and a process
        killed during the next task (a hard time limit) does not run the finished one again.
        Quick tasks still share round trips: the committer takes all that are ready."""
        self._track_batch(batch)
        self._ack_early(batch)
        for index, d in enumerate(batch):
            if self.stopping:
                self._hand_back(batch[index:])
                break
            outcome = self._execute(d)
            with self._outcome_ready:
                self._outcomes.append((d, outcome))
                self._outcome_ready.notify()

    def _executor_loop(self) -> None:
        while True:
            d = self._work.get()
            if d is None:
                return
            with self._inflight_lock:
                flight = self._inflight.get(d.message_id)
            if flight is not None and self._acks_early is not None and self._acks_early(d):
                try:
                    self._ack_early([d])
                except _RECOVERABLE as exc:
                    log.warning("worker: early ack failed (%s); running anyway", exc)
            try:
                outcome = self._execute(d)
            except BaseException as exc:  # noqa: BLE001 - a hook failed: the slot must come back
                log.exception("worker: executing %s failed", d.execution_id)
                outcome = Outcome.dead(f"handler crashed: {exc!r}")
            with self._outcome_ready:
                self._outcomes.append((d, outcome))
                self._outcome_ready.notify()

    def _execute(self, d: Delivery) -> Outcome:
        """Run the handler; every failure mode becomes an outcome, nothing escapes."""
        if d.delivery_count > self.settings.max_deliveries:
            reason = (
                f"delivered {d.delivery_count} times (max_deliveries="
                f"{self.settings.max_deliveries}); the runner died or stalled each time"
            )
            if self._give_up is not None:
                try:
                    return self._give_up(d, reason)
                except Exception:  # the dead letter matters more than the handler's record
                    log.exception("worker: give-up hook failed for %s", d.execution_id)
            return Outcome.dead(reason)
        try:
            with self._inflight_lock:
                self._running[d.message_id] = time.time()
            if self._on_task_start is not None:
                self._on_task_start(d)
            result = self.handler(d)
            if inspect.isawaitable(result):
                result = self._await(result)
            assert isinstance(result, Outcome), f"handler returned {result!r}"
            return result
        except Exception as exc:
            from .errors import Undeliverable

            if isinstance(exc, Undeliverable):
                log.error("worker: dead-lettering %s: %s", d.execution_id, exc.reason)
                return Outcome.dead(exc.reason)
            log.exception("worker: handler crashed on %s", d.execution_id)
            return Outcome.dead(f"handler crashed: {exc!r}")
        except BaseException as exc:  # noqa: BLE001 - SystemExit in a task must not kill the executor
            log.exception("worker: handler raised %r on %s", exc, d.execution_id)
            return Outcome.dead(f"handler crashed: {exc!r}")
        finally:
            self.processed += 1
            with self._inflight_lock:
                self._running.pop(d.message_id, None)
                self._ran.add(d.message_id)
            if self._on_task_end is not None:
                self._on_task_end(d)

    def _await(self, awaitable: Awaitable[Outcome]) -> Outcome:
        """Coroutine handlers run on the worker's own event loop thread."""
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._start_thread(loop.run_forever, "docket-asyncio")
                self._loop = loop

        async def _wrap() -> Outcome:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(_wrap(), self._loop).result()

    # -- moving due work ---------------------------------------------------------------------

    def _move_due(self) -> float:
        """Move due work of every queue; returns seconds until the next due time (bounded)."""
        pipe = Pipeline(self.redis)
        for k in self.keys.values():
            pipe.script(self._move, [k.due, k.stream], [k.run_prefix, self.settings.move_batch])
        replies = pipe.execute()
        local_now = time.time() * 1000
        wait = 1.0
        moved = 0
        for count, head, now in replies:
            moved += int(count)
            self.clock_offset_ms = int(now) - local_now
            if int(count) >= self.settings.move_batch:
                wait = 0.0
            head_ms = float(head)
            if head_ms >= 0:
                wait = min(wait, max(0.0, (head_ms - int(now)) / 1000.0))
        if moved:
            self.docket.backend.notify()
        return wait

    def _mover_loop(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        subscribed = False
        while not self.stopping:
            try:
                if not subscribed:
                    pubsub.subscribe(*[k.wake for k in self.keys.values()])
                    subscribed = True
                wait = self._move_due()
                if wait > 0:
                    pubsub.get_message(timeout=wait)
                    # drain extra notices so one burst of adds costs one move
                    while pubsub.get_message(timeout=0) is not None:
                        pass
            except _RECOVERABLE as exc:
                log.warning("worker: mover lost Redis (%s); retrying", exc)
                subscribed = False
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001 - the connection is already broken
                    pass
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                self._stopping.wait(1.0)
        pubsub.close()

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
                    if _text(c["name"]) == self.consumer
                ]
                if info and not int(info[0].get("pending", 0)):
                    self.redis.xgroup_delconsumer(k.stream, GROUP, self.consumer)
        except (redis.RedisError, OSError) as exc:
            log.warning("worker: could not tidy up on shutdown (%s)", exc)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        log.info("worker: %s stopped after %d tasks", self.consumer, self.processed)


_text = text


def _lossy(value: Any) -> str:
    """Text of a field that may not be UTF-8 (a malformed entry must still be recorded)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


__all__ = ["Handler", "PerpetualSpec", "QueueKeys", "Worker", "WorkerSettings", "workers_key"]
