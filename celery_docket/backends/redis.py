"""``celery.backends.redis``: importable so modules load; the result store is the engine's.

Results always live in the engine's Redis store (``app.backend``); a project's own
``RedisBackend`` subclass cannot replace it, so making one raises NotImplementedError.
"""

from __future__ import annotations

from typing import Any

__all__ = ("RedisBackend", "SentinelBackend")


class RedisBackend:
    """Celery's Redis result backend class, for subclassing; refused when instantiated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "celery_docket stores results in its own Redis layout; custom result backend "
            f"classes ({type(self).__qualname__}) are not supported: use app.backend"
        )


class SentinelBackend(RedisBackend):
    """Celery's Sentinel variant; refused likewise."""
