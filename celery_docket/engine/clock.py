"""Time helpers. Due times are decided by Redis's clock; local clocks only measure intervals."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone

When = float | datetime | timedelta | None
"""A due time: epoch seconds, an (aware or UTC-naive) datetime, a delay, or None for now."""


def to_epoch_ms(when: When, now: float | None = None) -> int | None:
    """Convert a due time to epoch milliseconds, rounded up: work never starts early.

    None stays None (run now).
    """
    if when is None:
        return None
    if isinstance(when, timedelta):
        base = time.time() if now is None else now
        seconds = base + when.total_seconds()
    elif isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp()
    else:
        seconds = float(when)
    return math.ceil(round(seconds * 1000, 3))
