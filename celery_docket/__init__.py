"""celery_docket: Celery's API on a Redis-streams engine.

Swap ``from celery import Celery`` for ``from celery_docket import Celery`` and run
``celery-docket -A proj worker``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._state import current_app, current_task
from .app import Celery, Task, shared_task
from .canvas import (
    Signature,
    chain,
    chord,
    chunks,
    group,
    maybe_signature,
    signature,
    subtask,
    xmap,
    xstarmap,
)
from .utils import uuid

__all__ = [
    "Celery",
    "Signature",
    "Task",
    "__version__",
    "chain",
    "chord",
    "chunks",
    "current_app",
    "current_task",
    "group",
    "maybe_signature",
    "shared_task",
    "signature",
    "subtask",
    "uuid",
    "xmap",
    "xstarmap",
]
