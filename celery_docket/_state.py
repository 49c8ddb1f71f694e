"""Which app and which task are current, per thread (Celery's ``celery._state``)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .local import Proxy

if TYPE_CHECKING:
    from .app.base import Celery

_tls = threading.local()
_default_app: Celery | None = None
_apps: weakref.WeakSet[Any] = weakref.WeakSet()
_on_app_finalizers: list[Any] = []


def _stack(name: str) -> list[Any]:
    stack = getattr(_tls, name, None)
    if stack is None:
        stack = []
        setattr(_tls, name, stack)
    return stack


def set_default_app(app: Celery) -> None:
    global _default_app
    _default_app = app


def _set_current_app(app: Celery) -> None:
    _tls.current_app = app


def get_current_app() -> Celery:
    app = getattr(_tls, "current_app", None) or _default_app
    if app is None:
        from .app.base import Celery

        app = Celery("default", set_as_current=False)
        set_default_app(app)
    return app


def get_current_task() -> Any:
    stack = _stack("tasks")
    return stack[-1] if stack else None


def get_current_worker_task() -> Any:
    """The task the worker is executing in this thread (not an eager/direct call)."""
    for task in reversed(_stack("tasks")):
        if not task.request.called_directly and not task.request.is_eager:
            return task
    return None


def push_task(task: Any) -> None:
    _stack("tasks").append(task)


def pop_task() -> None:
    stack = _stack("tasks")
    if stack:
        stack.pop()


def push_request(task: Any, request: Any) -> None:
    _stack(f"req:{id(task)}").append(request)


def pop_request(task: Any) -> None:
    stack = _stack(f"req:{id(task)}")
    if stack:
        stack.pop()


def top_request(task: Any) -> Any:
    stack = _stack(f"req:{id(task)}")
    return stack[-1] if stack else None


def register_app(app: Any) -> None:
    _apps.add(app)


def all_apps() -> list[Any]:
    return list(_apps)


def connect_on_app_finalize(callback: Any) -> Any:
    """Run ``callback(app)`` for every app, now and when later apps finalize."""
    _on_app_finalizers.append(callback)
    for app in all_apps():
        if app.finalized:
            callback(app)
    return callback


def app_finalizers() -> list[Any]:
    return list(_on_app_finalizers)


current_app: Any = Proxy(get_current_app, "current_app")
current_task: Any = Proxy(get_current_task, "current_task")


# -- allow_join_result: result.get() inside a task, when the caller accepts the risk --------


def join_allowed() -> bool:
    """True inside ``allow_join_result()`` (and not inside a nested ``denied_join_result``)."""
    stack = _stack("join_allowed")
    return bool(stack and stack[-1])


@contextmanager
def allow_join_result() -> Iterator[None]:
    """Let ``result.get()`` run inside a task (Celery refuses it there, to avoid deadlocks)."""
    stack = _stack("join_allowed")
    stack.append(True)
    try:
        yield
    finally:
        stack.pop()


@contextmanager
def denied_join_result() -> Iterator[None]:
    """Refuse ``result.get()`` inside a task again, within an ``allow_join_result()``."""
    stack = _stack("join_allowed")
    stack.append(False)
    try:
        yield
    finally:
        stack.pop()
