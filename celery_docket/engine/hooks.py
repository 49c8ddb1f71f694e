"""The engine's one lifecycle seam: where anything outside the engine's loops attaches.

After dramatiq's middleware. A ``Hook`` overrides the methods it cares about; a ``Hooks``
registry keeps, for each lifecycle point, a tuple of the bound methods that were actually
overridden, rebuilt when a hook is added. The engine tests the tuple before calling, so a
point nobody attached to costs one truth test of an empty tuple on the hot path.

Points, in the order a call lives through them:

* ``before_enqueue(call)`` / ``after_enqueue(call, execution)``: on the producer (``Client``);
* ``on_worker_start(worker)``: every loop runs and the worker is ready;
* ``before_run(worker, delivery)`` / ``after_run(worker, delivery, outcome)``: around the
  handler, on the thread that runs it (``after_run`` also when the handler failed: the
  outcome says how); an exception in ``before_run`` dead-letters the delivery as a handler
  crash would;
* ``after_commit(worker, delivery, outcome, committed)``: the outcome was committed
  (``committed`` False: the lease was lost and another worker owns the entry), then
  ``after_retry`` (an ``again`` outcome) or ``after_dead_letter`` (a ``dead`` one) for what
  was committed. These run on the committer thread: keep them short;
* ``on_worker_stop(worker)``: the worker has shut down (after its last commit).

Hooks other than ``before_run`` must not raise; if one does, the error is logged and the
engine carries on. Decisions (ack early? what to do with a message delivered too often?)
are not hooks: they are arguments of ``Worker``, since exactly one answer is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from .messages import Call, Delivery, Execution, Outcome

log = logging.getLogger("celery_docket.engine.hooks")

POINTS = (
    "before_enqueue",
    "after_enqueue",
    "on_worker_start",
    "before_run",
    "after_run",
    "after_commit",
    "after_retry",
    "after_dead_letter",
    "on_worker_stop",
)


class WorkerView(Protocol):
    """What a hook may read of the worker it is attached to."""

    @property
    def node(self) -> str: ...

    @property
    def consumer(self) -> str: ...

    @property
    def processed(self) -> int: ...


class Hook:
    """Base class of a hook: override only the points you need (the rest cost nothing)."""

    def before_enqueue(self, call: Call) -> None:
        """A call is about to be sent (one per call of an ``enqueue_many`` too)."""

    def after_enqueue(self, call: Call, execution: Execution) -> None:
        """Redis took the call; ``execution.added`` is False when the key already existed."""

    def on_worker_start(self, worker: WorkerView) -> None:
        """The worker is ready: every loop runs."""

    def before_run(self, worker: WorkerView, delivery: Delivery) -> None:
        """The handler is about to run ``delivery``."""

    def after_run(self, worker: WorkerView, delivery: Delivery, outcome: Outcome) -> None:
        """The handler returned (or failed); ``outcome`` goes to the committer next."""

    def after_commit(
        self, worker: WorkerView, delivery: Delivery, outcome: Outcome, committed: bool
    ) -> None:
        """The outcome was committed with its ack (``committed`` False: lease lost)."""

    def after_retry(self, worker: WorkerView, delivery: Delivery, outcome: Outcome) -> None:
        """An ``again`` outcome was committed: the execution runs again at its ``when_ms``."""

    def after_dead_letter(self, worker: WorkerView, delivery: Delivery, outcome: Outcome) -> None:
        """A ``dead`` outcome was committed: the message is in the dead-letter stream."""

    def on_worker_stop(self, worker: WorkerView) -> None:
        """The worker shut down: nothing runs or commits any more."""


class Hooks:
    """The hooks attached to one client or worker, as one tuple of callables per point."""

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._hooks: list[Hook] = []
        self.before_enqueue: tuple[Callable[[Call], None], ...] = ()
        self.after_enqueue: tuple[Callable[[Call, Execution], None], ...] = ()
        self.on_worker_start: tuple[Callable[[WorkerView], None], ...] = ()
        self.before_run: tuple[Callable[[WorkerView, Delivery], None], ...] = ()
        self.after_run: tuple[Callable[[WorkerView, Delivery, Outcome], None], ...] = ()
        self.after_commit: tuple[Callable[[WorkerView, Delivery, Outcome, bool], None], ...] = ()
        self.after_retry: tuple[Callable[[WorkerView, Delivery, Outcome], None], ...] = ()
        self.after_dead_letter: tuple[Callable[[WorkerView, Delivery, Outcome], None], ...] = ()
        self.on_worker_stop: tuple[Callable[[WorkerView], None], ...] = ()
        for hook in hooks:
            self.add(hook)

    def add(self, hook: Hook) -> Hook:
        """Attach ``hook`` after those already attached (they run in that order)."""
        self._hooks.append(hook)
        for point in POINTS:
            setattr(self, point, tuple(getattr(h, point) for h in self._hooks if _has(h, point)))
        return hook

    def __iter__(self) -> Iterator[Hook]:
        return iter(list(self._hooks))

    def __len__(self) -> int:
        return len(self._hooks)

    def fire(self, point: str, *args: Any) -> None:
        """Call every hook of ``point``, logging (not raising) what one of them raises."""
        for call in getattr(self, point):
            try:
                call(*args)
            except Exception:  # one hook's failure must not stop the engine
                log.exception("engine: %s hook %r failed", point, call)


def _has(hook: Hook, point: str) -> bool:
    method = getattr(hook, point, None)
    if method is None:
        return False
    return getattr(method, "__func__", method) is not getattr(Hook, point)


__all__ = ["POINTS", "Hook", "Hooks", "WorkerView"]
