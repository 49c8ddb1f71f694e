"""What the Celery worker attaches to the engine's lifecycle seam (``engine/hooks.py``).

The facade never reaches into the engine worker: Celery's ``worker_ready``, and the
``celery.worker.state`` bookkeeping that tests wait on, hang on engine hooks here. Later
attachments (rate limits, metrics, events) belong beside these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..engine import Delivery, Hook, Outcome
from ..engine.hooks import WorkerView
from . import state as worker_state

log = logging.getLogger("celery.worker")

SUCCEEDED = "succeeded"
"""``Delivery.scratch`` key the handler sets to the task name when a task succeeded."""


class Ready(Hook):
    """``on_worker_start``: the engine worker is ready; Celery logs and sends worker_ready."""

    def __init__(self, announce: Callable[[], None]) -> None:
        self.announce = announce

    def on_worker_start(self, worker: WorkerView) -> None:
        self.announce()


class Bookkeeping(Hook):
    """``after_commit``: a task that succeeded counts in ``celery.worker.state`` only once
    its result is stored, so a test that waits for it can read the result."""

    def after_commit(
        self, worker: WorkerView, delivery: Delivery, outcome: Outcome, committed: bool
    ) -> None:
        name = delivery.scratch.get(SUCCEEDED)
        if committed and name is not None and outcome.action == "ack":
            worker_state.task_ready(delivery.execution_id, str(name), successful=True)
