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


BACKUP_MOVE_GRACE = 0.1
"""``move_grace_seconds`` of prefork children past the first: how late parked work may get
while the first child is being replaced, and how often (at most) each backup checks."""


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
    move_grace_seconds: float = 0.0
    """0: move work when due. More: a backup mover, which moves work only once it is this
    late. A prefork pool's first child moves on time and the others stand by (see
    ``BACKUP_MOVE_GRACE``), instead of every child running a move for each due time."""
    perpetual_refresh_seconds: float = 60.0
    max_tasks: int = 0
    """Stop after this many tasks (prefork children recycle this way); 0: never."""
    consume: bool = True
    """False: a scheduling-only process (moves due work, keeps perpetuals alive, runs none)."""

    def batch_size(self) -> int:
        if self.prefetch > 0:
            return self.prefetch
        return min(256, max(4, 4 * self.concurrency))
