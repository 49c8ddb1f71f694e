"""Results per execution id: a value with a TTL, plus a pub/sub notice on the same name.

Waiting subscribes first, then reads, then blocks on the notice, so a result written between
the read and the wait is never missed and nothing polls with sleeps.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .connection import Backend
from .errors import ResultTimeout


class ResultStore:
    """Reads and writes results under ``prefix + execution_id``."""

    def __init__(self, backend: Backend, prefix: str) -> None:
        self.backend = backend
        self.prefix = prefix
        self._local = threading.local()

    def key(self, execution_id: str) -> str:
        return f"{self.prefix}{execution_id}"

    def get(self, execution_id: str) -> bytes | None:
        value: bytes | None = self.backend.client.get(self.key(execution_id))
        return value

    def get_many(self, execution_ids: list[str]) -> list[bytes | None]:
        if not execution_ids:
            return []
        values = self.backend.client.mget([self.key(i) for i in execution_ids])
        return [None if v is None else bytes(v) for v in values]

    def set(self, execution_id: str, value: bytes, ttl_ms: int | None) -> None:
        """Write (and announce) a value outside a completion, e.g. STARTED or progress."""
        key = self.key(execution_id)
        pipe = self.backend.client.pipeline(transaction=False)
        if ttl_ms:
            pipe.set(key, value, px=ttl_ms)
        else:
            pipe.set(key, value)
        pipe.publish(key, value)
        pipe.execute()

    def forget(self, execution_id: str) -> None:
        self.backend.client.delete(self.key(execution_id))

    def _pubsub(self) -> Any:
        """One subscription connection per thread, reused across waits (a fresh pubsub per
        wait would reconnect, handshake included, on every ``get()``)."""
        pubsub = getattr(self._local, "pubsub", None)
        if pubsub is None:
            pubsub = self.backend.client.pubsub(ignore_subscribe_messages=True)
            self._local.pubsub = pubsub
        return pubsub

    def wait(
        self,
        execution_id: str,
        timeout: float | None,
        is_final: object = None,
    ) -> bytes:
        """Block until a value that ``is_final`` accepts exists; raise ResultTimeout.

        ``is_final(value) -> bool`` lets callers skip intermediate values (STARTED, RETRY).
        """
        check = is_final if callable(is_final) else (lambda _v: True)
        key = self.key(execution_id)
        channel = key.encode()
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self._pubsub()
        try:
            pubsub.subscribe(key)
            value = self.backend.client.get(key)
            if value is not None and check(bytes(value)):
                return bytes(value)
            while True:
                remaining = 1.0 if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    raise ResultTimeout(f"no result for {execution_id} within {timeout}s")
                message = pubsub.get_message(timeout=min(remaining, 1.0))
                if message is not None and message.get("type") == "message":
                    if message.get("channel") != channel:
                        continue  # a late notice for an earlier wait on this thread
                    data = bytes(message["data"])
                    if check(data):
                        return data
                elif message is None and self.backend.is_memory:
                    value = self.backend.client.get(key)
                    if value is not None and check(bytes(value)):
                        return bytes(value)
        except BaseException:
            # a broken or interrupted subscription is not reused
            self._local.pubsub = None
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001 - already failing; the original error matters
                pass
            raise
        finally:
            still_ours = getattr(self._local, "pubsub", None) is pubsub
            if still_ours:
                try:
                    pubsub.unsubscribe(key)
                except Exception:  # noqa: BLE001 - drop the connection rather than fail a get
                    self._local.pubsub = None
                    pubsub.close()
