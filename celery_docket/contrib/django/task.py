"""``DjangoTask``: send a task only once the surrounding database transaction commits.

A task sent from inside ``transaction.atomic()`` can run before the row it reads is
committed (or after it was rolled back); ``delay_on_commit`` defers the send to Django's
``transaction.on_commit``, as Celery's ``celery.contrib.django.task.DjangoTask`` does.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction

from ...app.task import Task

__all__ = ["DjangoTask"]


class DjangoTask(Task):
    """A task with ``delay_on_commit`` and ``apply_async_on_commit``."""

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``delay(*args, **kwargs)`` when the current transaction commits (at once outside
        one); returns ``None``, since no task id exists until then."""
        transaction.on_commit(functools.partial(self.delay, *args, **kwargs))

    def apply_async_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``apply_async(*args, **kwargs)`` when the current transaction commits."""
        transaction.on_commit(functools.partial(self.apply_async, *args, **kwargs))
