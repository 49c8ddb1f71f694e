"""Celery's backend base classes, so code that checks ``isinstance(app.backend, ...)`` works.

Our one result backend keeps results in Celery's key-value layout on Redis
(``celery-task-meta-<id>``), so it is a :class:`BaseKeyValueStoreBackend`. Code that builds a
backend of its own from these bases gets a clear ``NotImplementedError``: results are always
written by the worker's commit, never by a user-supplied backend class.
"""

from __future__ import annotations

from typing import Any

from .. import states
from ..keys import CHORD_UNLOCK_PREFIX, GROUP_META_PREFIX, TASK_META_PREFIX

__all__ = ("Backend", "BaseBackend", "BaseKeyValueStoreBackend", "KeyValueStoreBackend", "states")


class Backend:
    """The root of Celery's backend classes."""

    supports_native_join = True
    supports_autoexpire = True
    persistent = True

    def __init__(self, app: Any, **kwargs: Any) -> None:
        if type(self).__module__ == __name__:
            raise NotImplementedError(
                "celery_docket keeps results in its own Redis layout; "
                "a result backend class of your own is not supported"
            )
        self.app = app


BaseBackend = Backend


class BaseKeyValueStoreBackend(Backend):
    """A backend storing one key per task id, with Celery's key prefixes."""

    task_keyprefix = TASK_META_PREFIX
    group_keyprefix = GROUP_META_PREFIX
    chord_keyprefix = CHORD_UNLOCK_PREFIX

    def get_key_for_task(self, task_id: str, key: str = "") -> bytes:
        return f"{self.task_keyprefix}{task_id}{key}".encode()

    def get_key_for_group(self, group_id: str, key: str = "") -> bytes:
        return f"{self.group_keyprefix}{group_id}{key}".encode()

    def _apply_chord_incr(self, *args: Any, **kwargs: Any) -> None:
        """Celery's hook for counting a chord part; our chords count in the engine."""
        raise NotImplementedError("chord counting happens in the worker's commit")


KeyValueStoreBackend = BaseKeyValueStoreBackend
