"""``celery.utils``: the top-level helpers projects import (``uuid``, ``nodename``, ...)."""

from __future__ import annotations

import uuid as _uuid
from functools import cached_property
from typing import Any

from .functional import chunks, memoize, noop
from .imports import import_from_cwd, instantiate, qualname, symbol_by_name
from .nodenames import nodename, nodesplit, worker_direct

__all__ = (
    "cached_property",
    "chunks",
    "gen_task_name",
    "gen_unique_id",
    "get_cls_by_name",
    "get_full_cls_name",
    "import_from_cwd",
    "instantiate",
    "memoize",
    "nodename",
    "nodesplit",
    "noop",
    "symbol_by_name",
    "uuid",
    "worker_direct",
)


def uuid(_uuid4: Any = _uuid.uuid4) -> str:
    """A new random task id (a UUID4 as text), as ``celery.utils.uuid()`` returns."""
    return str(_uuid4())


gen_unique_id = uuid
get_cls_by_name = symbol_by_name
get_full_cls_name = qualname


def gen_task_name(app: Any, name: str, module_name: str) -> str:
    """The name a task gets from its function's name and module (``proj.tasks.add``)."""
    from ..app.base import gen_task_name as _gen

    return _gen(app, name, module_name)
