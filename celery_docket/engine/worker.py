"""A worker process's consumer: read in batches, run, commit outcomes with their acks.

One ``Worker`` is one consumer in the ``workers`` group of each queue it serves. Threads:

* the reader (the caller of ``run``) reads batches with ``XREADGROUP`` and runs them inline
  (``solo``) or hands them to executor threads (``threads``);
* the committer (``threads`` only) commits finished outcomes, all that are ready in one
  round trip, so a finished task frees its slot and wakes the reader at once;
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

from .docket import Call, Docket
from .keys import GROUP, QueueKeys, heartbeat_key
from .lua import Pipeline, Script
from .messages import Delivery, Outcome, decode_entry
from .scripts import ACK_FAST, COMPLETE, HANDBACK, MOVE, RENEW

log = logging.getLogger("celery_docket.engine.worker")


def workers_key(prefix: str) -> str:
    """Sorted set of consumer names scored by their last heartbeat (ms): an index of the
    heartbeat keys, so inspection reads them without scanning the keyspace."""
    return f"{prefix}:workers"


Handler = Callable[[Delivery], "Outcome | Awaitable[Outcome]"]
Pool = Literal["solo", "threads"]

_RECOVERABLE = (redis.ConnectionError, redis.TimeoutError, OSError)


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


@dataclass
class _InFlight:
    delivery: Delivery
    started: float
    early_acked: bool = False


class Worker:
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
        self._inflight: dict[str, _InFlight] = {}
        self._inflight_lock = threading.Lock()
        self._reclaimed: deque[Delivery] = deque()
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
    def stopping(self) -> bool:
        return self._stopping.is_set()

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
        if self.settings.pool == "threads":
            self._start_thread(self._committer_loop, "docket-committer")
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

    def _adopt_own_orphans(self) -> None:
        """Claim at once the pending entries of this node's previous (dead) incarnations."""
        prefix = f"{self.node}:"
        for q, k in self.keys.items():
            for info in self.redis.xinfo_consumers(k.stream, GROUP):
                name = _text(info["name"])
                if name == self.consumer or not name.startswith(prefix):
                    continue
                if self._alive(name):
                    log.warning("worker: another live worker uses node name %s", self.node)
                    continue
                if int(info.get("pending", 0)):
                    pending = self.redis.xpending_range(
                        k.stream, GROUP, "-", "+", 10_000, consumername=name
                    )
                    ids = [p["message_id"] for p in pending]
                    counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
                    claimed = (
                        self.redis.xclaim(k.stream, GROUP, self.consumer, 0, ids) if ids else []
                    )
                    for mid, fields in claimed:
                        if fields is None:
                            continue
                        d = self._delivery(q, _text(mid), fields)
                        if d is not None:
                            d.delivery_count = counts.get(d.message_id, 1) + 1
                            self._reclaimed.append(d)
                    log.info("worker: adopted %d entries of %s on %s", len(claimed), name, q)
                self.redis.xgroup_delconsumer(k.stream, GROUP, name)
        self._attach_fates(list(self._reclaimed))

    def _forget_dead_predecessors(self) -> None:
        """Drop the heartbeats of this node's dead earlier incarnations, so inspection does
        not show them until they expire."""
        index = workers_key(self.docket.prefix)
        prefix = f"{self.node}:"
        for member in self.redis.zrange(index, 0, -1):
            name = _text(member)
            if name == self.consumer or not name.startswith(prefix) or self._alive(name):
                continue
            self.redis.delete(heartbeat_key(self.docket.prefix, name))
            self.redis.zrem(index, name)

    def _alive(self, consumer: str) -> bool:
        """Is that consumer's process alive? A heartbeat from this host whose pid is gone
        belongs to a dead predecessor (e.g. SIGKILLed and restarted by a supervisor)."""
        raw = self.redis.get(heartbeat_key(self.docket.prefix, consumer))
        if raw is None:
            return False
        try:
            info = json.loads(raw)
            host, pid = info.get("host"), int(info.get("pid"))
        except (ValueError, TypeError):
            return True
        if host != socket.gethostname() or pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

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

    def _take_reclaimed(self, count: int) -> list[Delivery]:
        out: list[Delivery] = []
        while self._reclaimed and len(out) < count:
            out.append(self._reclaimed.popleft())
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
                    batch = self._take_reclaimed(size) or self._read(size)
                    if batch:
                        started = time.monotonic()
                        self._run_solo(batch)
                        size = self._next_batch_size(size, len(batch), started)
                else:
                    self._slots.acquire()
                    self._slots.release()
                    free = self._free_slots()
                    batch = self._take_reclaimed(free) or self._read(min(batch_size, free))
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
            for d in batch:
                self._inflight[d.message_id] = _InFlight(d, started)

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
        self._track_batch(batch)
        self._ack_early(batch)
        done: list[tuple[Delivery, Outcome]] = []
        first_done = 0.0
        for index, d in enumerate(batch):
            if self.stopping:
                self._hand_back(batch[index:])
                break
            done.append((d, self._execute(d)))
            now = time.monotonic()
            first_done = first_done or now
            if now - first_done > 0.005:  # do not hold finished results behind a slow task
                self._commit_with_retry(done)
                done, first_done = [], 0.0
        self._commit_with_retry(done)

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
            outcome = self._execute(d)
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

    # -- committing --------------------------------------------------------------------------

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
            except _RECOVERABLE as exc:
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
        pipe = Pipeline(self.redis)
        order: list[list[tuple[Delivery, Outcome]]] = []
        for q, items in fast.items():
            k = self.keys.get(q) or self.docket.keys(q)
            args: list[str | bytes | int | float] = [GROUP]
            for d, o in items:
                r = o.result
                if r is None:
                    args += [d.message_id, "", b"", 0]
                else:
                    args += [d.message_id, r.key, r.value, max(0, int(r.ttl_ms))]
            pipe.script(self._ack_fast, [k.stream], args)
            order.append(items)
        for q, entries in full.items():
            k = self.keys.get(q) or self.docket.keys(q)
            args = [GROUP, self.consumer, k.run_prefix, k.wake, q]
            for d, o, fence in entries:
                args += _outcome_args(d, o, fence=fence)
            pipe.script(self._complete, [k.stream, k.due, k.dead], args)
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
        for items, reply in zip(order, replies, strict=True):
            for (d, o), committed in zip(items, reply, strict=True):
                if not int(committed):
                    log.warning(
                        "worker: outcome of %s not committed: its lease expired and another "
                        "worker took it over",
                        d.execution_id,
                    )
                elif o.action == "dead":
                    log.error("worker: %s dead-lettered: %s", d.execution_id, o.reason)
        if any(o.action == "again" for _d, o in done):
            self.docket.backend.notify()

    def _hand_back(self, deliveries: list[Delivery]) -> None:
        """Return read-but-unstarted entries to the stream for other workers."""
        by_queue: dict[str, list[str]] = {}
        for d in deliveries:
            by_queue.setdefault(d.queue, []).append(d.message_id)
        for q, mids in by_queue.items():
            k = self.keys[q]
            try:
                self._handback(self.redis, [k.stream], [GROUP, self.consumer, k.run_prefix, *mids])
            except _RECOVERABLE as exc:
                log.warning("worker: hand-back failed (%s); entries wait for lease expiry", exc)
        with self._inflight_lock:
            for d in deliveries:
                self._inflight.pop(d.message_id, None)
                self._ran.discard(d.message_id)

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

    # -- keeping leases, heartbeat, reclaim ---------------------------------------------------

    def _beat_heart(self) -> None:
        if self._stopped.is_set():
            return  # the key is deleted on the way out: never write it back
        now = time.time()
        held = self.deliveries()
        info: dict[str, Any] = {
            "consumer": self.consumer,
            "node": self.node,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.consuming(),
            "pool": self.settings.pool,
            "concurrency": self.settings.concurrency,
            "processed": self.processed,
            "started": self.started_at,
            "active": len(held),
            "running": sum(1 for _d, s in held if s is not None),
            "beat": now,
            "deliveries": [
                {
                    "m": d.message_id,
                    "i": d.execution_id,
                    "q": d.queue,
                    "n": d.function,
                    "c": d.delivery_count,
                    "r": d.received_at,
                    "s": s,
                }
                for d, s in held[:1000]
            ],
        }
        if self.heartbeat_extra is not None:
            try:
                info.update(self.heartbeat_extra())
            except Exception:  # noqa: BLE001 - the heartbeat itself must go out
                log.exception("worker: heartbeat extra failed")
        ttl = max(int(self.settings.lease_seconds * 1000), 3000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(heartbeat_key(self.docket.prefix, self.consumer), json.dumps(info), px=ttl)
        pipe.zadd(workers_key(self.docket.prefix), {self.consumer: int(now * 1000)})
        pipe.execute()

    def _renew_leases(self) -> None:
        threshold = time.monotonic() - self.settings.lease_seconds / 3.0
        with self._inflight_lock:
            old = [f.delivery for f in self._inflight.values() if f.started < threshold]
        by_queue: dict[str, list[str]] = {}
        for d in old:
            by_queue.setdefault(d.queue, []).append(d.message_id)
        for q, mids in by_queue.items():
            k = self.keys[q]
            lost = self._renew(self.redis, [k.stream], [GROUP, self.consumer, *mids])
            for mid in lost or []:
                log.warning("worker: lease of %s on %s was lost", _text(mid), q)

    def _reclaim_expired(self) -> None:
        """Take over entries whose runner stopped renewing its lease (dead or frozen)."""
        if len(self._reclaimed) >= self.settings.batch_size():
            return
        idle_ms = int(self.settings.lease_seconds * 1000)
        found: list[Delivery] = []
        for q, k in self.keys.items():
            if q in self._paused:
                continue
            reply = self.redis.xautoclaim(
                k.stream, GROUP, self.consumer, idle_ms, "0-0", count=self.settings.batch_size()
            )
            for mid, fields in reply[1]:
                if fields is None:
                    continue
                d = self._delivery(q, _text(mid), fields)
                if d is not None:
                    found.append(d)
        if not found:
            return
        pipe = self.redis.pipeline(transaction=False)
        for d in found:
            pipe.xpending_range(self.keys[d.queue].stream, GROUP, d.message_id, d.message_id, 1)
        for d, pending in zip(found, pipe.execute(), strict=True):
            if pending:
                d.delivery_count = int(pending[0]["times_delivered"])
        self._attach_fates(found)
        log.warning("worker: reclaimed %d entries whose lease expired", len(found))
        self._reclaimed.extend(found)
        self.docket.backend.notify()

    def _attach_fates(self, deliveries: list[Delivery]) -> None:
        """Read why a supervisor killed an earlier runner of these entries, if it did."""
        if not deliveries:
            return
        pipe = self.redis.pipeline(transaction=False)
        for d in deliveries:
            pipe.hget(self.keys[d.queue].fates, d.message_id)
        for d, fate in zip(deliveries, pipe.execute(), strict=True):
            if fate is not None:
                d.fate = _text(fate)

    def _keeper_loop(self) -> None:
        """Runs until the worker has fully stopped: a graceful drain longer than the lease
        must keep its leases, or another worker would run the same entries again."""
        period = max(0.05, min(self.settings.lease_seconds / 3.0, 10.0))
        last_perpetual = time.monotonic()
        while not self._stopped.wait(period):
            try:
                self._beat_heart()
                self._renew_leases()
                if self.stopping:
                    continue
                self._reclaim_expired()
                if time.monotonic() - last_perpetual > self.settings.perpetual_refresh_seconds:
                    self._assert_perpetuals()
                    last_perpetual = time.monotonic()
            except _RECOVERABLE as exc:
                log.warning("worker: keeper lost Redis (%s); retrying", exc)
            except Exception:
                log.exception("worker: keeper failed; retrying")

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
        leftovers = list(self._reclaimed)
        self._reclaimed.clear()
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _lossy(value: Any) -> str:
    """Text of a field that may not be UTF-8 (a malformed entry must still be recorded)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _outcome_args(d: Delivery, o: Outcome, fence: bool) -> list[str | bytes | int | float]:
    result = o.result
    return [
        d.message_id,
        d.execution_id,
        "1" if d.keyed else "",
        d.generation,
        o.action,
        "" if o.when_ms is None else int(o.when_ms),
        d.body if o.body is None else o.body,
        d.attempt if o.attempt is None else o.attempt,
        d.function,
        o.reason,
        "" if result is None else result.key,
        b"" if result is None else result.value,
        0 if result is None else max(0, int(result.ttl_ms)),
        "1" if fence else "",
    ]


__all__ = ["Handler", "PerpetualSpec", "QueueKeys", "Worker", "WorkerSettings", "workers_key"]
