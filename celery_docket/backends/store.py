"""The object ``app.backend``/``task.backend``/``result.backend`` returns.

Results are written by the worker's commit in Celery's key-value layout; this object is what
code that touches the backend directly reads through (``get_task_meta``, ``store_result``,
``mark_as_done``, ``forget``) and ``ResultSet.join_native``'s batched poll (``get_many``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from .. import states
from ..engine import ResultTimeout
from ..exceptions import TimeoutError
from .base import BaseKeyValueStoreBackend


class Backend(BaseKeyValueStoreBackend):
    """What ``task.backend``/``app.backend`` offers to code that touches it directly."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._cache: dict[str, Any] = {}

    def ensure_chords_allowed(self) -> None:
        """Chords need a result store; ours always is one (Celery raises for ``rpc://``)."""

    def get_state(self, task_id: str) -> str:
        return str(self.get_task_meta(task_id)["status"])

    def get_result(self, task_id: str) -> Any:
        return self.get_task_meta(task_id).get("result")

    def get_task_meta(self, task_id: str) -> dict[str, Any]:
        from .. import result as _result

        return _result.AsyncResult(task_id, app=self.app)._meta()

    def store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: Any = None,
        request: Any = None,
        **kwargs: Any,
    ) -> None:
        self.app.store_result(task_id, result, state, traceback, request=request)

    def mark_as_done(self, task_id: str, result: Any, request: Any = None, **kwargs: Any) -> None:
        self.store_result(task_id, result, states.SUCCESS, request=request)

    def mark_as_failure(
        self, task_id: str, exc: Any, traceback: Any = None, request: Any = None, **kwargs: Any
    ) -> None:
        self.store_result(task_id, exc, states.FAILURE, traceback, request=request)

    def forget(self, task_id: str) -> None:
        self._cache.pop(task_id, None)
        self.app.results.forget(task_id)

    def get_many(
        self,
        task_ids: Any,
        timeout: float | None = None,
        interval: float = 0.5,
        on_message: Any = None,
        on_interval: Any = None,
        **kwargs: Any,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, meta) of each task as it becomes ready: ready ones in one MGET per round,
        then a wait on a pending one's notice (bounded by ``interval`` and the deadline), so
        nothing sleeps; ``timeout=0`` reads once and raises if some are still pending."""
        from .. import result as _result

        pending = set(task_ids)
        for task_id in sorted(pending):
            cached = self._cache.get(task_id)
            if cached is not None:
                pending.discard(task_id)
                yield task_id, cached
        deadline = None if timeout is None else time.monotonic() + timeout
        probe = _result.AsyncResult("-", app=self.app, backend=self)
        while pending:
            ids = sorted(pending)
            with _result._typed_connection_errors(ids[0]):
                raws = self.app.results.get_many(ids)
            for task_id, raw in zip(ids, raws, strict=True):
                meta = probe._decode(raw) if raw is not None else None
                if meta is None or meta["status"] not in states.READY_STATES:
                    continue
                self._cache[task_id] = meta
                pending.discard(task_id)
                if on_message is not None:
                    on_message(meta)
                yield task_id, meta
            if not pending:
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"Operation timed out ({timeout})")
            if on_interval is not None:
                on_interval()
            slice_ = interval if remaining is None else min(interval, remaining)
            waiting = min(pending)
            try:
                with _result._typed_connection_errors(waiting):
                    self.app.results.wait(
                        waiting,
                        slice_,
                        is_final=lambda v: probe._decode(v)["status"] in states.READY_STATES,
                    )
            except ResultTimeout:
                pass
            finally:
                self.app.results.unwatch(waiting)
