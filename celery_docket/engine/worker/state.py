"""The state a worker's loops share, created in one place.

A ``Worker`` is one object whose loops (read, execute, commit, move, keep) run on their own
threads; each loop is a mixin in its own module. They share what is built here: what the
worker holds (``_inflight``, under ``_inflight_lock``), the outcomes waiting for the
committer (``_outcomes``, under ``_outcome_ready``), and what the keeper reclaimed
(``_reclaimed``, under ``_reclaim_lock``). The few methods one loop calls on another are
declared at the end, so each module type-checks alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue as queue_mod
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from ..client import Client
from ..hooks import Hook, Hooks
from ..keys import QueueKeys
from ..lua import Script
from ..messages import Delivery, Outcome
from ..scripts import ACK_FAST, COMPLETE, HANDBACK, MOVE, RENEW
from .settings import Handler, PerpetualSpec, WorkerSettings

log = logging.getLogger("celery_docket.engine.worker")

RECOVERABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.AskError,
    redis.exceptions.SlotNotCoveredError,
)
"""Errors a loop survives by waiting and trying again (Redis restarting, a network blip; on
a cluster, a slot moving or a failover that outlasted redis-py's own redirect retries)."""


@dataclass
class InFlight:
    delivery: Delivery
    started: float
    """Monotonic time taken before the command that claimed the entry: ``now - started``
    never understates its idle time in the PEL."""
    early_acked: bool = False


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WorkerState:
    """Shared state of one worker's loops (see the module docstring)."""

    def __init__(
        self,
        docket: Client,
        handler: Handler,
        settings: WorkerSettings | None,
        perpetuals: Iterable[PerpetualSpec],
        hooks: Iterable[Hook] = (),
    ) -> None:
        self.docket = docket
        self.handler = handler
        self.settings = settings or WorkerSettings()
        self.perpetuals = list(perpetuals)
        base = self.settings.name or f"docket@{socket.gethostname()}"
        self.node = base
        self.consumer = f"{base}:{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.keys: dict[str, QueueKeys] = {
            q: docket.keys(q) for lq in self.settings.queues for q in docket.shard_queues(lq)
        }
        """Physical queues (a sharded queue's ``q#i``), as deliveries name them."""
        self.redis: Any = docket.redis
        self._complete = Script(COMPLETE)
        self._ack_fast = Script(ACK_FAST)
        self._renew = Script(RENEW)
        self._handback = Script(HANDBACK)
        self._move = Script(MOVE)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._inflight: dict[str, InFlight] = {}
        self._inflight_lock = threading.Lock()
        self._reclaimed: deque[Delivery] = deque()
        self._waiting: set[str] = set()
        """Message ids of ``_reclaimed`` still held (a lost lease drops an id from here)."""
        self._reclaim_lock = threading.Lock()
        self._reclaim_cursor: dict[str, str] = {}
        self._reclaim_more = False
        """The last reclaim pass found work and there may be more: reclaim when slots free."""
        self._outcomes: deque[tuple[Delivery, Outcome]] = deque()
        self._outcome_ready = threading.Condition()
        self._slots = threading.Semaphore(self.settings.concurrency)
        self._work: queue_mod.SimpleQueue[Delivery | None] = queue_mod.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self.clock_offset_ms = 0.0
        self._read_started = time.monotonic()
        self.processed = 0
        self.started_at = 0.0
        self.ready = threading.Event()
        self.heartbeat_extra: Callable[[], dict[str, Any]] | None = None
        """Called at each heartbeat; its items are added to the heartbeat payload."""
        self._running: dict[str, float] = {}
        self._ran: set[str] = set()
        """Message ids whose handler returned and whose outcome is not committed yet."""
        self._paused: set[str] = set()
        self._acks_early: Callable[[Delivery], bool] | None = None
        self._give_up: Callable[[Delivery, str], Outcome] | None = None
        self.hooks = Hooks(hooks)
        """Lifecycle hooks (``hooks.py``); attach more with ``worker.hooks.add(hook)``."""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- provided by the loops' mixins (see ``core.Worker``) ----------------------------------

    def _delivery(self, queue: str, mid: str, fields: dict[bytes, bytes]) -> Delivery | None:
        raise NotImplementedError  # read.Reading

    def _commit(self, done: list[tuple[Delivery, Outcome]]) -> None:
        raise NotImplementedError  # commit.Committing

    def _hand_back(self, deliveries: list[Delivery]) -> None:
        raise NotImplementedError  # commit.Committing

    def _take_work(self, count: int) -> list[Delivery]:
        raise NotImplementedError  # keep.LeaseKeeping

    def _track_batch(self, batch: list[Delivery]) -> None:
        raise NotImplementedError  # execute.Executing

    def _run_solo(self, batch: list[Delivery]) -> None:
        raise NotImplementedError  # execute.Executing

    def _assert_perpetuals(self) -> None:
        raise NotImplementedError  # core.Worker

    def consuming(self) -> list[str]:
        raise NotImplementedError  # core.Worker

    def deliveries(self) -> list[tuple[Delivery, float | None]]:
        raise NotImplementedError  # core.Worker
