"""Celery's ``celery.app``: the application class, ``shared_task`` and the task base."""

from __future__ import annotations

from typing import Any

from .. import _state
from ..local import Proxy
from . import builtins as _builtins  # noqa: F401 - registers celery.map/starmap/chunks
from .base import Celery
from .task import Task


def shared_task(*args: Any, **kwargs: Any) -> Any:
    """A task usable by every app (Django reusable apps): bound lazily to the current app."""

    def create(fun: Any) -> Any:
        name = kwargs.get("name")

        def register(app: Any) -> Any:
            return app._task_from_fun(fun, **kwargs)

        _state.connect_on_app_finalize(register)
        for app in _state.all_apps():
            if not app.finalized:
                register(app)

        def resolve() -> Any:
            app = _state.get_current_app()
            task_name = name or _task_name(app, fun)
            if task_name not in app._tasks:
                register(app)
            return app._tasks[task_name]

        return Proxy(resolve, name)

    if len(args) == 1 and callable(args[0]):
        return create(args[0])
    return create


def _task_name(app: Any, fun: Any) -> str:
    from .base import gen_task_name

    return gen_task_name(app, fun.__name__, fun.__module__)


__all__ = ["Celery", "Task", "shared_task"]
