"""The producer side: add calls now, at a time, or under an idempotency key; cancel; results.

``Client`` is what workers, the prefork supervisor and the Celery facade share; the native
decorator API (``Docket``: ``task``, ``add``, ``worker``) sits on top of it in ``docket.py``,
so the worker modules import this one and nothing imports back into them.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from . import codec
from .clock import to_epoch_ms
from .connection import Backend, connect
from .errors import BrokerFull, BrokerUnavailable, PayloadTooLarge
from .hooks import Hook, Hooks
from .keys import GROUP, QueueKeys, queues_key
from .lua import Immediate, Pipeline, Script
from .messages import DEFAULT_QUEUE, Call, Execution
from .results import ResultStore
from .scripts import ADD, CANCEL

DEFAULT_MAX_PAYLOAD = 10 * 1024 * 1024


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
    if isinstance(exc, (redis.exceptions.ClusterError, redis.exceptions.TryAgainError)):
        # redis-py gave up following redirects: a slot moving (a multi-key script waits out
        # the whole migration with TRYAGAIN) or a failover; trying later is the answer
        return BrokerUnavailable(
            f"Redis Cluster did not take the call (a slot moving or a failover); it may not "
            f"have been enqueued: {text}"
        )
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


class Client:
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
        hooks: Iterable[Hook] = (),
        shards: Mapping[str, int] | None = None,
    ) -> None:
        self.url = url
        self.shards = {q: int(n) for q, n in (shards or {}).items() if int(n) > 1}
        """Sharded queues: ``{"emails": 4}`` spreads ``emails`` over ``emails#0..3``, each its
        own hash tag (``{cd:emails#i}``), so on a cluster over several masters."""
        for q in self.shards:
            if "#" in q:
                raise ValueError(f"a sharded queue's name may not contain '#': {q!r}")
        self.hooks = Hooks(hooks)
        """Enqueue hooks (``before_enqueue``, ``after_enqueue``): see ``hooks.py``."""
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
        self.content_type = content_type
        self.accept = frozenset(accept)
        self.wait_replicas = 0
        """Durable enqueue: replicas that must confirm each enqueue (``WAIT``); 0 = don't."""
        self.wait_timeout_ms = 1000

    def keys(self, queue: str) -> QueueKeys:
        if queue in self.shards:  # loud, not an empty look-alike queue
            raise ValueError(
                f"queue {queue!r} is sharded: name one of its shards ({queue}#0 ... "
                f"{queue}#{self.shards[queue] - 1}), or use shard_queues()"
            )
        return QueueKeys(self.prefix, queue)

    def shard_queues(self, queue: str) -> list[str]:
        """The queues that hold ``queue``'s work: itself, or its shards ``queue#i``."""
        n = self.shards.get(queue, 1)
        return [queue] if n <= 1 else [f"{queue}#{i}" for i in range(n)]

    def logical_queue(self, queue: str) -> str:
        """The queue a physical name belongs to: ``q`` for a shard ``q#i`` of a sharded
        ``q``, else the name itself (what inspection shows, so shards read as one queue)."""
        base, sep, index = queue.rpartition("#")
        if sep and base in self.shards and index.isdigit():
            return base
        return queue

    def shard_of(self, queue: str, routing: str) -> str:
        """The shard of ``queue`` that ``routing`` (a key, once token or execution id) maps
        to, the same on every producer: a key's adds meet in one shard, so it stays
        idempotent, and a send-once token's replays meet its first send."""
        n = self.shards.get(queue, 1)
        if n <= 1:
            return queue
        return f"{queue}#{zlib.crc32(routing.encode()) % n}"

    def _shards_for(self, queue: str, execution_id: str) -> list[str]:
        """Where to look for an execution: its id's shard first, then the others (an
        unkeyed send-once execution went where its token maps)."""
        first = self.shard_of(queue, execution_id)
        return [first] + [q for q in self.shard_queues(queue) if q != first]

    def close(self) -> None:
        self.backend.close()

    # -- enqueue ---------------------------------------------------------------------------

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.max_payload_bytes:
            raise PayloadTooLarge(len(body), self.max_payload_bytes)

    def _queue_call(self, pipe: Pipeline | Immediate, call: Call) -> tuple[str, bool]:
        """Queue ``call`` on ``pipe``; returns (execution id, whether it went through ADD)."""
        if self.hooks.before_enqueue:
            self.hooks.fire("before_enqueue", call)
        self._check_size(call.body)
        keyed = call.key is not None
        execution_id = call.key if call.key is not None else (call.execution_id or uuid.uuid4().hex)
        when_ms = to_epoch_ms(call.when)
        routing = execution_id if keyed else (call.once or execution_id)
        k = self.keys(self.shard_of(call.queue, routing))
        if not keyed and when_ms is None and not call.perpetual and call.once is None:
            # The hot path: one XADD, no script.
            pipe.command(
                "xadd",
                k.stream,
                {"i": execution_id, "n": call.function, "b": call.body, "a": call.attempt},
            )
            return execution_id, False
        keys = [k.stream, k.due, k.run(execution_id)]
        if call.once:
            keys.append(k.once(call.once) if self.backend.is_cluster else call.once)
        pipe.script(
            self._add,
            keys,
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
        execution = self._execution(call, execution_id, direct.replies[0], scripted)
        if self.hooks.after_enqueue:
            self.hooks.fire("after_enqueue", call, execution)
        return execution

    def enqueue_many(self, calls: Iterable[Call]) -> list[Execution]:
        """Add many calls, pipelined in one round trip per chunk of 1,000."""
        calls = list(calls)
        out: list[Execution] = []
        for start in range(0, len(calls), 1000):
            chunk = calls[start : start + 1000]
            pipe = Pipeline(self.redis)
            new_queues = sorted({c.queue for c in chunk} - self._known_queues)
            if new_queues:
                physical = [p for q in new_queues for p in self.shard_queues(q)]
                pipe.command("sadd", queues_key(self.prefix), *physical)
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
        if self.hooks.after_enqueue:
            for call, execution in zip(calls, out, strict=True):
                self.hooks.fire("after_enqueue", call, execution)
        return out

    # -- control ---------------------------------------------------------------------------

    def cancel(self, execution_id: str, queue: str = DEFAULT_QUEUE) -> str:
        """Remove parked or queued work; returns parked, queued, running or missing."""
        found = "missing"
        for shard in self._shards_for(queue, execution_id):
            k = self.keys(shard)
            state = self._cancel(
                self.redis, [k.stream, k.due, k.run(execution_id)], [GROUP, execution_id]
            )
            found = state.decode() if isinstance(state, bytes) else str(state)
            if found != "missing":
                break
        self.backend.notify()
        return found

    def execution_record(self, execution_id: str, queue: str = DEFAULT_QUEUE) -> dict[str, str]:
        raw: dict[bytes, bytes] = {}
        for shard in self._shards_for(queue, execution_id):
            raw = self.redis.hgetall(self.keys(shard).run(execution_id))
            if raw:
                break
        return {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}

    def queues(self) -> list[str]:
        return sorted(q.decode() for q in self.redis.smembers(queues_key(self.prefix)))

    def ensure_group(self, queue: str) -> None:
        """Create the stream and its consumer group (from the start, so nothing is skipped);
        of every shard, for a sharded queue."""
        for shard in self.shard_queues(queue):
            try:
                self.redis.xgroup_create(self.keys(shard).stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise


__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_QUEUE",
    "Call",
    "Client",
    "translate_redis_errors",
    "unreachable",
]
