"""A worker process's copy of the revoked task ids.

Revocations are stored in Redis (``<prefix>:revoked``, task id scored by the time the
revocation expires) so they outlive worker restarts. Asking Redis before every task would
cost a round trip per task, so each worker process keeps this copy instead: loaded when the
worker starts, updated by the control notices ``app.control.revoke`` publishes, and loaded
again every ``RESYNC_SECONDS`` (a notice missed during a reconnect is not missed for long).
The handler checks it before running a task: a dictionary lookup.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from ..keys import revoked_key

RESYNC_SECONDS = 30.0

_instances: weakref.WeakSet[RevokedSet] = weakref.WeakSet()


class RevokedSet:
    """Revoked task ids with their expiry (epoch ms), kept in step with Redis."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self.synced_at = 0.0
        _instances.add(self)

    def sync(self) -> None:
        """Replace the copy with what Redis holds now (one round trip)."""
        now = int(time.time() * 1000)
        rows = self.redis.zrangebyscore(revoked_key(self.prefix), now, "+inf", withscores=True)
        fresh = {(m.decode() if isinstance(m, bytes) else str(m)): int(score) for m, score in rows}
        with self._lock:
            self._ids = fresh
        self.synced_at = time.monotonic()

    def add(self, ids: Iterable[str], expires_ms: int) -> None:
        with self._lock:
            for task_id in ids:
                self._ids[str(task_id)] = int(expires_ms)

    def __contains__(self, task_id: object) -> bool:
        expires = self._ids.get(task_id) if isinstance(task_id, str) else None
        return expires is not None and expires > time.time() * 1000

    def ids(self) -> list[str]:
        now = time.time() * 1000
        with self._lock:
            return [i for i, expires in self._ids.items() if expires > now]

    def __len__(self) -> int:
        return len(self.ids())


def is_revoked(task_id: str) -> bool:
    """Has ``task_id`` been revoked (as far as this worker process knows)?

    Long tasks on the threads or solo pool cannot be interrupted by ``terminate=True``;
    they can call this between steps and stop early.
    """
    return any(task_id in s for s in list(_instances))


__all__ = ["RESYNC_SECONDS", "RevokedSet", "is_revoked"]
