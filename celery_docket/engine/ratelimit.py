"""Rate limits shared by every worker: one reservation per run, decided by Redis.

Celery keeps a token bucket in each worker, so ``rate_limit="10/m"`` on three workers allows
30 a minute. Here the limit holds across all workers: each run reserves the next free slot of
its task's schedule in one atomic script (GCRA: a "theoretical arrival time" advanced by one
interval per reservation, on Redis ``TIME``, so a burst of one as in Celery's bucket). A run
whose slot lies ahead is parked until then, holding its slot, so it never competes again and
nothing starves; a slot reserved by a run that then dies is simply skipped.

Limits set at run time (``control rate_limit``) live in one hash that workers re-read every
``REFRESH_SECONDS``, so every worker obeys them within that time, even for a task that had no
limit of its own.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .lua import Script

REFRESH_SECONDS = 2.0

RESERVE = """
-- KEYS: the task's schedule (its theoretical arrival time, in microseconds).
-- ARGV: the interval in microseconds. Returns {wait before the reserved slot (0: now), slot}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
-- forgotten once idle: an expired schedule means the next run may start at once
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
return {tat - now, tat}
"""


def schedule_key(prefix: str, task_name: str) -> str:
    """The schedule of one task name (a single key: any Redis Cluster slot will do)."""
    return f"{prefix}:rate:{task_name}"


def overrides_key(prefix: str) -> str:
    """Limits set at run time: task name -> interval in microseconds (-1: unlimited)."""
    return f"{prefix}:rate-limits"


def interval_us(per_second: float) -> int:
    """The spacing of a rate in microseconds (0 for no limit)."""
    return 0 if per_second <= 0 else max(1, round(1_000_000 / per_second))


class RateLimits:
    """Reserve run slots of rate-limited task names on one Redis (one round trip each)."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._reserve = Script(RESERVE)
        self._overrides: dict[str, int] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def interval(self, task_name: str, own_per_second: float) -> int:
        """The interval in force for ``task_name``: a run-time override, else its own."""
        overrides = self.overrides()
        if task_name in overrides:
            return max(0, overrides[task_name])
        return interval_us(own_per_second)

    def reserve(self, task_name: str, interval: int) -> int:
        """Take the next slot of ``task_name``; returns microseconds to wait (0: run now)."""
        return self.reserve_slot(task_name, interval)[0]

    def reserve_slot(self, task_name: str, interval: int) -> tuple[int, int]:
        """(microseconds to wait, the slot's Redis time in microseconds); (0, 0): no limit."""
        if interval <= 0:
            return 0, 0
        wait, slot = self._reserve(self.client, [schedule_key(self.prefix, task_name)], [interval])
        return int(wait), int(slot)

    def overrides(self) -> dict[str, int]:
        """Run-time limits, re-read at most every ``REFRESH_SECONDS``."""
        now = time.monotonic()
        if now - self._read_at >= REFRESH_SECONDS:
            with self._lock:
                if now - self._read_at >= REFRESH_SECONDS:
                    raw = self.client.hgetall(overrides_key(self.prefix))
                    self._overrides = {k.decode(): int(v) for k, v in raw.items()}
                    self._read_at = now
        return self._overrides

    def set_limit(self, task_name: str, per_second: float | None) -> None:
        """Store a limit for every worker (``None``: back to the task's own; 0: unlimited)."""
        key = overrides_key(self.prefix)
        if per_second is None:
            self.client.hdel(key, task_name)
        else:
            self.client.hset(key, task_name, interval_us(per_second) or -1)
        self._read_at = float("-inf")
