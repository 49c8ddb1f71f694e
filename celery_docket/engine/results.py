"""Results per execution id: a value with a TTL, plus a pub/sub notice on the same name.

Waiting subscribes first, then reads, then blocks on the notice, so a result written between
the read and the wait is never missed and nothing polls with sleeps.
"""

from __future__ import annotations

import time

from .connection import Backend
from .errors import ResultTimeout


class ResultStore:
    """Reads and writes results under ``prefix + execution_id``."""

    def __init__(self, backend: Backend, prefix: str) -> None:
        self.backend = backend
        self.prefix = prefix

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
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self.backend.client.pubsub(ignore_subscribe_messages=True)
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
                    data = bytes(message["data"])
                    if check(data):
                        return data
                elif message is None and self.backend.is_memory:
                    value = self.backend.client.get(key)
                    if value is not None and check(bytes(value)):
                        return bytes(value)
        finally:
            pubsub.close()
