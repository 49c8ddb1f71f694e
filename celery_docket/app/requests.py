"""Celery's worker ``Request`` class, importable; custom Request classes are refused.

Celery lets a task set ``Request = MyRequest`` to hook ``on_timeout``/``on_failure`` in the
worker process. This worker does not build Request objects, so such a task is refused when
it is defined (see ``refuse_custom_request``) instead of having its hooks silently skipped.
"""

from __future__ import annotations

from typing import Any

from .task import Context

__all__ = ("Context", "Request", "refuse_custom_request")

_WHY = (
    "celery_docket does not support custom worker Request classes ({name}): move the "
    "on_timeout/on_failure logic to the task's on_failure handler or the task_failure signal"
)


class Request:
    """Celery's worker-side request; subclassable so modules load, never instantiated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(_WHY.format(name=type(self).__qualname__))


def refuse_custom_request(task_type: type) -> None:
    """Raise for a task class whose ``Request`` attribute is a class (a custom Request)."""
    custom = getattr(task_type, "Request", None)
    if isinstance(custom, type):
        raise NotImplementedError(_WHY.format(name=custom.__qualname__))
