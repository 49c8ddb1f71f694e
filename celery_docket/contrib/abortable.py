"""``celery.contrib.abortable``: tasks that check, while they run, whether to stop.

As in Celery, ``abort()`` only writes the ABORTED state to the result store; the task must
call ``self.is_aborted()`` in its loop and return early. Nothing is killed.
"""

from __future__ import annotations

from typing import Any

from ..app.task import Task
from ..result import AsyncResult

__all__ = ("ABORTED", "AbortableAsyncResult", "AbortableTask")

ABORTED = "ABORTED"


class AbortableAsyncResult(AsyncResult):
    """A result that can ask its running task to stop."""

    def is_aborted(self) -> bool:
        return bool(self.state == ABORTED)

    def abort(self) -> None:
        """Mark the task ABORTED; its next ``is_aborted()`` check sees it."""
        self.app.store_result(self.id, None, ABORTED)


class AbortableTask(Task):
    """A task base whose runs can call ``self.is_aborted()``."""

    abstract = True

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AbortableAsyncResult:  # noqa: N802
        return AbortableAsyncResult(task_id, app=self.app, task_name=self.name, **kwargs)

    def is_aborted(self, **kwargs: Any) -> bool:
        task_id = kwargs.get("task_id", self.request.id)
        if task_id is None:
            return False
        return self.AsyncResult(task_id).is_aborted()
