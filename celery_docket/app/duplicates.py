"""Two callables under one task name: warn once per name, as Celery 5.7 does.

``@app.task`` keeps the task registered first (a module imported twice hands back the same
function, which is no collision); ``register_task`` replaces it. Either way the user hears
about it once per name, since a silent winner is how a worker ends up running the wrong code.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..exceptions import DuplicateTaskNameWarning

KEPT_FIRST = "The new callable was ignored: calls under this name still run the first one."
REPLACED = "The new task replaced the old one: calls under this name now run the new one."


def qualname_of(obj: Any) -> str:
    """``module.qualname`` of a function, or of the function a task wraps, or of its class."""
    target = getattr(obj, "__wrapped__", None) or obj
    if not hasattr(target, "__qualname__"):
        target = type(target)
    return f"{target.__module__}.{target.__qualname__}"


def warn_duplicate(app: Any, name: str, existing: Any, new: Any, consequence: str) -> None:
    """Warn that ``name`` is taken by another callable, once per app and name."""
    warned: set[str] = app.__dict__.setdefault("_duplicate_names_warned", set())
    if name in warned:
        return
    warned.add(name)
    warnings.warn(
        DuplicateTaskNameWarning(
            f"Task name {name!r} is already registered to a different callable.\n\n"
            f"Existing: {qualname_of(existing)}\nNew:      {qualname_of(new)}\n\n"
            f"{consequence}\n\n"
            "Give each task its own name: pass name= to the decorator or rename a callable."
        ),
        stacklevel=4,
    )


__all__ = ["KEPT_FIRST", "REPLACED", "qualname_of", "warn_duplicate"]
