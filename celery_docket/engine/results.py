"""Results per execution id: a value with a TTL, plus a pub/sub notice on the same name.

Waiting subscribes first, then reads, then blocks on the notice, so a result written between
the read and the wait is never missed and nothing polls with sleeps. A sender may ``watch``
an execution right after enqueueing it (as Celery's Redis backend does): the subscription is
then already in place when ``wait`` starts, which saves its round trip. Subscriptions live on
one connection per thread; a thread's watched set is bounded (the oldest is dropped) and its
pending notices are drained now and then, so a producer that never waits holds neither a
growing set of channels nor a growing buffer on the Redis side.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Any

import redis

from .cluster import mget
from .connection import Backend
from .errors import ResultTimeout
from .keys import result_key


class ResultStore:
    """Reads and writes results under ``prefix + execution_id``."""

    #: most executions one thread keeps watched before it drops the oldest
    WATCH_LIMIT = 1024
    #: watches between two non-blocking drains of a thread's subscription connection
    DRAIN_EVERY = 64
    #: dropped watches unsubscribed together, in one command
    RETIRE_BATCH = 64

    def __init__(self, backend: Backend, prefix: str) -> None:
        self.backend = backend
        self.prefix = prefix
        self._local = threading.local()

    def key(self, execution_id: str) -> str:
        return result_key(self.prefix, execution_id)

    def get(self, execution_id: str) -> bytes | None:
        value: bytes | None = self.backend.client.get(self.key(execution_id))
        return value

    def get_many(self, execution_ids: list[str]) -> list[bytes | None]:
        if not execution_ids:
            return []
        values = mget(self.backend.client, [self.key(i) for i in execution_ids])
        return [None if v is None else bytes(v) for v in values]

    def set(self, execution_id: str, value: bytes, ttl_ms: int | None) -> None:
        """Write (and announce) a value outside a completion, e.g. STARTED or progress."""
        key = self.key(execution_id)
        pipe = self.backend.client.pipeline(transaction=False)
        if ttl_ms:
            pipe.set(key, value, px=ttl_ms)
        else:
            pipe.set(key, value)
        pipe.execute_command("PUBLISH", key, value)  # publish() is refused in a cluster pipeline
        pipe.execute()

    def forget(self, execution_id: str) -> None:
        self.backend.client.delete(self.key(execution_id))
        self.unwatch(execution_id)

    # -- subscriptions ----------------------------------------------------------------------

    def _pubsub(self) -> Any:
        """One subscription connection per thread, reused across waits (a fresh pubsub per
        wait would reconnect, handshake included, on every ``get()``). A forked child never
        reuses its parent's: the socket is the parent's."""
        local = self._local
        pubsub = getattr(local, "pubsub", None)
        if pubsub is None or local.pid != os.getpid():
            pubsub = self.backend.client.pubsub(ignore_subscribe_messages=True)
            local.pubsub = pubsub
            local.pid = os.getpid()
            local.watched = OrderedDict()
            local.arrived = {}
            local.since_drain = 0
            local.retired = []
        return pubsub

    def _drop_pubsub(self) -> None:
        pubsub = getattr(self._local, "pubsub", None)
        self._local.pubsub = None
        if pubsub is not None and getattr(self._local, "pid", None) == os.getpid():
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001 - already broken; dropping it is the point
                pass

    def watch(self, execution_id: str) -> None:
        """Subscribe to the execution's notice now, so a later ``wait`` in this thread does
        not start with a round trip. Best effort: a failure here never fails the send."""
        key = self.key(execution_id)
        try:
            pubsub = self._pubsub()
            local = self._local
            self._unretire(key)
            pubsub.subscribe(key)
            local.watched[key] = None
            if len(local.watched) > self.WATCH_LIMIT:
                oldest, _ = local.watched.popitem(last=False)
                local.arrived.pop(oldest.encode(), None)
                local.retired.append(oldest)
                if len(local.retired) >= self.RETIRE_BATCH:
                    # one write for many: a send loop past the limit pays one command per
                    # task (its SUBSCRIBE), not two
                    pubsub.unsubscribe(*local.retired)
                    local.retired.clear()
            local.since_drain += 1
            if local.since_drain >= self.DRAIN_EVERY:
                local.since_drain = 0
                self._drain_nowait(pubsub)
        except Exception:  # noqa: BLE001 - the enqueue succeeded; waiting will subscribe
            self._drop_pubsub()

    def _unretire(self, key: str) -> None:
        """A key watched again must not be unsubscribed by the next batch of retirements."""
        retired = self._local.retired
        if retired and key in retired:
            retired.remove(key)

    def unwatch(self, execution_id: str) -> None:
        """Drop this thread's subscription to the execution, if it has one."""
        local = self._local
        pubsub = getattr(local, "pubsub", None)
        if pubsub is None or getattr(local, "pid", None) != os.getpid():
            return
        key = self.key(execution_id)
        try:
            # a notice already on the socket would otherwise be read by the next wait as
            # fresh (forget() then a re-run: the old FAILURE came back)
            self._drain_nowait(pubsub)
        except Exception:  # noqa: BLE001
            self._drop_pubsub()
            return
        local.arrived.pop(key.encode(), None)
        if local.watched.pop(key, False) is None:
            try:
                pubsub.unsubscribe(key)
            except Exception:  # noqa: BLE001
                self._drop_pubsub()

    def _drain_nowait(self, pubsub: Any) -> None:
        """Read what is already buffered: notices of watched executions are kept for their
        ``wait``, subscription replies are discarded."""
        for _ in range(4 * self.DRAIN_EVERY):
            message = pubsub.get_message(timeout=0.0)
            if message is None:
                if not pubsub.connection or not pubsub.connection.can_read(timeout=0):
                    return
                continue
            self._stash(message)

    def _stash(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        channel = message.get("channel")
        if isinstance(channel, bytes) and channel.decode() in self._local.watched:
            self._local.arrived[channel] = bytes(message["data"])

    def wait(
        self,
        execution_id: str,
        timeout: float | None,
        is_final: object = None,
    ) -> bytes:
        """Block until a value that ``is_final`` accepts exists; raise ResultTimeout.

        ``is_final(value) -> bool`` lets callers skip intermediate values (STARTED, RETRY).
        A lost connection is retried once on a new one (a failover closes the old master's
        connections while the new master answers); if that fails too, the error is raised.
        """
        started = time.monotonic()
        try:
            return self._wait_once(execution_id, timeout, is_final)
        except redis.ConnectionError:
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            return self._wait_once(execution_id, left, is_final)

    def _wait_once(self, execution_id: str, timeout: float | None, is_final: object) -> bytes:
        check = is_final if callable(is_final) else (lambda _v: True)
        key = self.key(execution_id)
        channel = key.encode()
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self._pubsub()
        local = self._local
        final = False
        try:
            if key not in local.watched:
                self._unretire(key)
                pubsub.subscribe(key)
                local.watched[key] = None
            arrived: bytes | None = local.arrived.pop(channel, None)
            if arrived is not None and check(arrived):
                final = True
                return arrived
            value = self.backend.client.get(key)
            if value is not None and check(bytes(value)):
                final = True
                return bytes(value)
            while True:
                remaining = 1.0 if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    # still watched: a caller waiting in slices picks up where this left off
                    raise ResultTimeout(f"no result for {execution_id} within {timeout}s")
                message = pubsub.get_message(timeout=min(remaining, 1.0))
                if message is not None and message.get("type") == "message":
                    if message.get("channel") != channel:
                        self._stash(message)  # another watched execution's notice
                        continue
                    data = bytes(message["data"])
                    if check(data):
                        final = True
                        return data
                elif message is None and self.backend.is_memory:
                    value = self.backend.client.get(key)
                    if value is not None and check(bytes(value)):
                        final = True
                        return bytes(value)
        except ResultTimeout:
            raise
        except BaseException:
            # a broken or interrupted subscription is not reused
            final = False
            self._drop_pubsub()
            raise
        finally:
            still_ours = getattr(local, "pubsub", None) is pubsub
            if final and still_ours:
                local.watched.pop(key, None)
                try:
                    pubsub.unsubscribe(key)
                except Exception:  # noqa: BLE001 - drop the connection rather than fail a get
                    self._drop_pubsub()
