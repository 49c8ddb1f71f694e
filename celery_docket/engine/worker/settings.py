"""What a worker is told: its settings, its perpetual executions, the handler's type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from ..messages import Delivery, Outcome

Handler = Callable[[Delivery], "Outcome | Awaitable[Outcome]"]
Pool = Literal["solo", "threads"]


@dataclass
class PerpetualSpec:
    """An execution that must always exist: re-added (idempotently) by every worker."""

    key: str
    function: str
    body: bytes
    queue: str = "default"
    first_when_ms: Callable[[int], int] | None = None
    """Given Redis's now in ms, when the first run is due (None: now)."""


@dataclass
class WorkerSettings:
    queues: list[str] = field(default_factory=lambda: ["default"])
    name: str = ""
    pool: Pool = "threads"
    concurrency: int = 4
    prefetch: int = 0
    """Messages read per batch; 0 means ``max(4, 4 * concurrency)`` capped at 256."""
    lease_seconds: float = 30.0
    max_deliveries: int = 5
    acks_late: bool = True
    block_ms: int = 1000
    move_batch: int = 500
    move_idle_seconds: float = 1.0
    """The mover's longest sleep: the backstop should a wake-up notice (pub/sub, not
    delivered while the mover is disconnected) be lost."""
    perpetual_refresh_seconds: float = 60.0
    max_tasks: int = 0
    """Stop after this many tasks (prefork children recycle this way); 0: never."""
    consume: bool = True
    """False: a scheduling-only process (moves due work, keeps perpetuals alive, runs none)."""

    def batch_size(self) -> int:
        if self.prefetch > 0:
            return self.prefetch
        return min(256, max(4, 4 * self.concurrency))
