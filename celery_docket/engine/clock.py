"""Time helpers. Due times are decided by Redis's clock; local clocks only measure intervals."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

When = float | datetime | timedelta | None
"""A due time: epoch seconds, an (aware or UTC-naive) datetime, a delay, or None for now."""


def to_epoch_ms(when: When, now: float | None = None) -> int | None:
    """Convert a due time to integer epoch milliseconds (None stays None: run now)."""
    if when is None:
        return None
    if isinstance(when, timedelta):
        base = time.time() if now is None else now
        return int((base + when.total_seconds()) * 1000)
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return int(when.timestamp() * 1000)
    return int(float(when) * 1000)


def redis_time_ms(raw: tuple[int, int] | list[bytes] | list[int]) -> int:
    """Redis ``TIME`` reply (seconds, microseconds) as epoch milliseconds."""
    seconds, micros = int(raw[0]), int(raw[1])
    return seconds * 1000 + micros // 1000
