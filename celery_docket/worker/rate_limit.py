"""Task rate limits in the Celery worker: a run over its task's rate is parked until its slot.

The slots come from the engine's shared schedule (``engine/ratelimit.py``), so a limit holds
across every worker, where Celery's holds per worker (MIGRATING.md says so). A parked run
carries a mark in its message properties: it already holds its slot and runs when delivered
again, without reserving a second one. Tasks with no limit cost one dict lookup.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..engine.messages import Delivery, Outcome
from ..engine.ratelimit import RateLimits
from ..protocol import TaskMessage
from ..utils.time import rate

SLOT_MARK = "docket_rate_slot"
"""Message property of a run parked by its rate limit: it holds a reserved slot."""
RUN_NOW_US = 2_000
"""Slots this close (microseconds) run at once: parking would cost more than the wait."""


class RateLimitGate:
    """Decides, before a task runs, whether its rate limit defers it."""

    def __init__(self, app: Any) -> None:
        self.enabled = not app.conf.get("worker_disable_rate_limits")
        self.limits = RateLimits(app.docket.redis, app.docket.prefix)
        self.default = app.conf.get("task_default_rate_limit")
        self.envelope_version = int(app.conf.get("docket_envelope_version"))
        self._own: dict[tuple[str, Any], float] = {}

    def _own_rate(self, task: Any) -> float:
        limit = getattr(task, "rate_limit", None) or self.default
        key = (task.name, limit)
        per_second = self._own.get(key)
        if per_second is None:
            per_second = self._own[key] = rate(limit)
        return per_second

    def defer(self, d: Delivery, message: TaskMessage, task: Any) -> Outcome | None:
        """``None``: run now. Else the outcome that parks this run until its slot."""
        if not self.enabled:
            return None
        overrides = self.limits.overrides()
        own = self._own_rate(task)
        if not own and task.name not in overrides:
            return None  # the common case: no limit anywhere
        if message.properties.pop(SLOT_MARK, None):
            return None  # parked by its limit before: this is its slot
        interval = self.limits.interval(task.name, own)
        if interval <= 0:
            return None
        wait_us = self.limits.reserve(task.name, interval)
        if wait_us < RUN_NOW_US:
            return None
        message.properties[SLOT_MARK] = True
        when_ms = math.ceil(time.time() * 1000 + wait_us / 1000)
        body = message.encode(self.envelope_version)
        return Outcome.again(when_ms, body, attempt=d.attempt)
