"""Celery's built-in tasks that signatures refer to by name: map, starmap, chunks, accumulate.

Registered on every app at finalize, so a worker runs ``task.map(...)`` / ``task.chunks(...)``
signatures sent by any producer, as in Celery.
"""

from __future__ import annotations

from typing import Any

from .. import _state


def _resolve(app: Any, task: Any) -> Any:
    return app.signature(task).type


def add_builtins(app: Any) -> None:
    @app.task(name="celery.map", shared=False, lazy=False)
    def xmap(task: Any, it: list[Any]) -> list[Any]:
        fun = _resolve(app, task)
        return [fun(item) for item in it]

    @app.task(name="celery.starmap", shared=False, lazy=False)
    def xstarmap(task: Any, it: list[Any]) -> list[Any]:
        fun = _resolve(app, task)
        return [fun(*item) for item in it]

    @app.task(name="celery.accumulate", shared=False, lazy=False)
    def accumulate(*args: Any, **kwargs: Any) -> Any:
        """What ``Task.replace`` appends to a group: the group's results as one value."""
        index = kwargs.get("index")
        return args[index] if index is not None else args

    @app.task(name="celery.chunks", shared=False, lazy=False)
    def chunks(task: Any, it: list[Any], n: int) -> Any:
        from ..canvas import chunks as chunks_sig

        return chunks_sig.apply_chunks(task, it, n, app=app)


_state.connect_on_app_finalize(add_builtins)
