"""The producer side: add calls now, at a time, or under an idempotency key; cancel; results."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

if TYPE_CHECKING:
    from .prefork import Supervisor
    from .worker import Worker

from . import codec
from .clock import When, to_epoch_ms
from .connection import Backend, connect
from .errors import BrokerFull, BrokerUnavailable, PayloadTooLarge
from .keys import GROUP, QueueKeys, queues_key
from .lua import Immediate, Pipeline, Script
from .messages import Execution
from .native import Perpetual, Registry, decode_result, encode_call, make_handler
from .results import ResultStore
from .scripts import ADD, CANCEL

DEFAULT_QUEUE = "default"
DEFAULT_MAX_PAYLOAD = 10 * 1024 * 1024


@dataclass(frozen=True)
class Call:
    """One call to enqueue: a function name and an opaque body, with where and when."""

    function: str
    body: bytes
    queue: str = DEFAULT_QUEUE
    when: When = None
    key: str | None = None
    execution_id: str | None = None
    replace: bool = False
    perpetual: bool = False
    attempt: int = 1
    once: str | None = None
    """A token: the call is added at most once per token (kept ``once_ttl_ms``)."""
    once_ttl_ms: int = 7 * 24 * 3600 * 1000


def translate_redis_errors(exc: redis.RedisError) -> Exception:
    """Map a redis error to the engine's typed errors."""
    text = str(exc)
    out_of_memory = getattr(redis.exceptions, "OutOfMemoryError", ())
    if (out_of_memory and isinstance(exc, out_of_memory)) or (
        isinstance(exc, redis.ResponseError) and text.startswith("OOM")
    ):
        return BrokerFull(f"Redis is out of memory, nothing was enqueued: {text}")
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return unreachable(exc)
    return exc


def unreachable(exc: Exception) -> BrokerUnavailable:
    """BrokerUnavailable that says what may have happened: a failed connect sent nothing,
    but a connection lost after the write (reset, timeout reading the reply) may have
    enqueued the call."""
    text = str(exc)
    if "connecting to" in text.lower() or isinstance(exc.__cause__, ConnectionRefusedError):
        return BrokerUnavailable(f"Redis is unreachable, nothing was enqueued: {text}")
    return BrokerUnavailable(
        f"Redis connection lost, the call may not have been enqueued (or may have been): {text}"
    )


class Docket:
    """A client of one engine namespace (``prefix``) on one Redis.

    Thread-safe: it holds only a connection pool and registered scripts.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        prefix: str = "cd",
        result_prefix: str | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
        max_connections: int = 16,
        pool_timeout: float = 30.0,
        backend: Backend | None = None,
        content_type: str = codec.JSON,
        accept: Iterable[str] = (codec.JSON,),
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.max_payload_bytes = max_payload_bytes
        self.backend = backend or connect(
            url, max_connections=max_connections, pool_timeout=pool_timeout
        )
        self.redis: Any = self.backend.client
        self.results = ResultStore(
            self.backend, result_prefix if result_prefix is not None else f"{prefix}:result:"
        )
        self._add = Script(ADD)
        self._cancel = Script(CANCEL)
        self._known_queues: set[str] = set()
        self._registry: Registry | None = None
        self.content_type = content_type
        self.accept = frozenset(accept)
        self.wait_replicas = 0
        """Durable enqueue: replicas that must confirm each enqueue (``WAIT``); 0 = don't."""
        self.wait_timeout_ms = 1000

    def keys(self, queue: str) -> QueueKeys:
        return QueueKeys(self.prefix, queue)

    def close(self) -> None:
        self.backend.close()

    # -- enqueue ---------------------------------------------------------------------------

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.max_payload_bytes:
            raise PayloadTooLarge(len(body), self.max_payload_bytes)

    def _queue_call(self, pipe: Pipeline | Immediate, call: Call) -> tuple[str, bool]:
        """Queue ``call`` on ``pipe``; returns (execution id, whether it went through ADD)."""
        self._check_size(call.body)
        keyed = call.key is not None
        execution_id = call.key if call.key is not None else (call.execution_id or uuid.uuid4().hex)
        when_ms = to_epoch_ms(call.when)
        k = self.keys(call.queue)
        if not keyed and when_ms is None and not call.perpetual and call.once is None:
            # The hot path: one XADD, no script.
            pipe.command(
                "xadd",
                k.stream,
                {"i": execution_id, "n": call.function, "b": call.body, "a": call.attempt},
            )
            return execution_id, False
        pipe.script(
            self._add,
            [k.stream, k.due, k.run(execution_id)],
            [
                k.wake,
                execution_id,
                call.function,
                call.body,
                "" if when_ms is None else when_ms,
                "1" if keyed else "",
                "1" if call.replace else "",
                call.attempt,
                "1" if call.perpetual else "",
                GROUP,
                call.once or "",
                call.once_ttl_ms,
            ],
        )
        return execution_id, True

    @staticmethod
    def _execution(call: Call, execution_id: str, reply: Any, scripted: bool) -> Execution:
        if not scripted:
            return Execution(execution_id, call.queue, "queued")
        status, state, when, _mid = (
            (x.decode() if isinstance(x, bytes) else str(x)) for x in reply
        )
        st = state if state in ("queued", "parked") else "queued"
        return Execution(
            execution_id,
            call.queue,
            st,  # type: ignore[arg-type]
            int(when) if when else None,
            added=status != "exists",
        )

    def enqueue(self, call: Call) -> Execution:
        """Add one call in one round trip (no pipeline once its queue is known)."""
        if call.queue not in self._known_queues or self.wait_replicas:
            return self.enqueue_many([call])[0]
        direct = Immediate(self.redis)
        try:
            execution_id, scripted = self._queue_call(direct, call)
        except redis.RedisError as exc:
            raise translate_redis_errors(exc) from exc
        self.backend.notify()
        return self._execution(call, execution_id, direct.replies[0], scripted)

    def enqueue_many(self, calls: Iterable[Call]) -> list[Execution]:
        """Add many calls, pipelined in one round trip per chunk of 1,000."""
        calls = list(calls)
        out: list[Execution] = []
        for start in range(0, len(calls), 1000):
            chunk = calls[start : start + 1000]
            pipe = Pipeline(self.redis)
            new_queues = sorted({c.queue for c in chunk} - self._known_queues)
            if new_queues:
                pipe.command("sadd", queues_key(self.prefix), *new_queues)
            ids = [self._queue_call(pipe, call) for call in chunk]
            try:
                replies = pipe.execute(self.wait_replicas, max(1, self.wait_timeout_ms))
            except redis.RedisError as exc:
                raise translate_redis_errors(exc) from exc
            self._known_queues.update(new_queues)
            replies = replies[1:] if new_queues else replies
            out.extend(
                self._execution(call, execution_id, reply, scripted)
                for call, (execution_id, scripted), reply in zip(chunk, ids, replies, strict=True)
            )
        self.backend.notify()
        return out

    # -- native docket-style API --------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry()
        return self._registry

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        perpetual: Perpetual | None = None,
    ) -> Any:
        """Register a function (usable as ``@docket.task`` or ``@docket.task(queue=...)``)."""

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self.registry.register(f, name=name, queue=queue, perpetual=perpetual)
            return f

        return register(fn) if fn is not None else register

    def add(
        self,
        fn: Callable[..., Any] | str,
        when: When = None,
        key: str | None = None,
        *,
        queue: str | None = None,
        replace: bool = False,
    ) -> Callable[..., Execution]:
        """``docket.add(fn, when=..., key=...)(*args, **kwargs)`` schedules one call."""
        entry = self.registry.resolve(fn)
        perpetual = entry.perpetual is not None

        def schedule(*args: Any, **kwargs: Any) -> Execution:
            body = encode_call(args, kwargs, self.content_type)
            the_key = key
            if perpetual and the_key is None:
                assert entry.perpetual is not None
                the_key = entry.perpetual.key or entry.name
            return self.enqueue(
                Call(
                    entry.name,
                    body,
                    queue=queue or entry.queue,
                    when=when,
                    key=the_key,
                    replace=replace,
                    perpetual=perpetual,
                )
            )

        return schedule

    def result(self, execution_id: str, timeout: float | None = None) -> Any:
        """Wait for a native execution's value; raises TaskFailed or ResultTimeout."""
        return decode_result(self.results.wait(execution_id, timeout))

    def worker(self, **settings: Any) -> Worker:
        """A worker for the registered functions (automatic perpetuals are re-asserted)."""
        from .worker import PerpetualSpec, Worker, WorkerSettings

        queues = settings.pop("queues", None) or sorted(
            {e.queue for e in self.registry.functions.values()} or {DEFAULT_QUEUE}
        )
        handler = make_handler(self.registry, self.results.key, accept=self.accept)
        perpetuals = [
            PerpetualSpec(
                e.perpetual.key or e.name,
                e.name,
                encode_call((), {}, self.content_type),
                queue=e.queue,
            )
            for e in self.registry.functions.values()
            if e.perpetual is not None and e.perpetual.automatic
        ]
        return Worker(
            self, handler, WorkerSettings(queues=queues, **settings), perpetuals=perpetuals
        )

    def prefork(
        self, processes: int, *, time_limit: float | None = None, **settings: Any
    ) -> Supervisor:
        """A prefork pool of ``processes`` solo children for the registered functions."""
        from .prefork import Supervisor

        if self.backend.is_memory:
            raise ValueError("memory:// lives in one process; use pool='threads' or 'solo'")
        node = settings.pop("name", None) or f"docket@{socket.gethostname()}"

        def make_worker(slot: int, start: Any, end: Any) -> Worker:
            worker = self.worker(pool="solo", name=f"{node}-{slot}", **settings)
            worker._on_task_start, worker._on_task_end = start, end
            return worker

        return Supervisor(
            make_worker,
            processes,
            make_docket=lambda: Docket(self.url, prefix=self.prefix, backend=self.backend.reopen()),
            time_limit=lambda _d: time_limit,
            lease_seconds=float(settings.get("lease_seconds", 30.0)),
        )

    # -- control ---------------------------------------------------------------------------

    def cancel(self, execution_id: str, queue: str = DEFAULT_QUEUE) -> str:
        """Remove parked or queued work; returns parked, queued, running or missing."""
        k = self.keys(queue)
        state = self._cancel(
            self.redis, [k.stream, k.due, k.run(execution_id)], [GROUP, execution_id]
        )
        self.backend.notify()
        return state.decode() if isinstance(state, bytes) else str(state)

    def execution_record(self, execution_id: str, queue: str = DEFAULT_QUEUE) -> dict[str, str]:
        raw = self.redis.hgetall(self.keys(queue).run(execution_id))
        return {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}

    def queues(self) -> list[str]:
        return sorted(q.decode() for q in self.redis.smembers(queues_key(self.prefix)))

    def ensure_group(self, queue: str) -> None:
        """Create the stream and its consumer group (from the start, so nothing is skipped)."""
        try:
            self.redis.xgroup_create(self.keys(queue).stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
