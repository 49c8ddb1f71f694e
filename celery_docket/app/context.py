"""``self.request``: what a running task sees of its own call (Celery's ``Context``).

Built by the worker from a delivered message (``worker/handler.py``), by ``apply`` in eager
mode, and pushed on the task's request stack while it runs (``app/trace.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Context"]


class Context:
    """What ``self.request`` shows while a task runs (Celery's field names and defaults)."""

    id: str | None = None
    args: Any = None
    kwargs: Any = None
    retries = 0
    eta: str | None = None
    expires: str | None = None
    is_eager = False
    headers: dict[str, Any] | None = None
    delivery_info: dict[str, Any] | None = None
    reply_to: str | None = None
    correlation_id: str | None = None
    hostname: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group: str | None = None
    group_index: int | None = None
    chord: Any = None
    chain: Any = None
    callbacks: Any = None
    errbacks: Any = None
    timelimit: Any = None
    origin: str | None = None
    task: str | None = None
    shadow: str | None = None
    ignore_result = False
    called_directly = True
    taskset: Any = None
    utc = True
    stamps: Any = None
    stamped_headers: Any = None
    argsrepr: str | None = None
    kwargsrepr: str | None = None
    properties: dict[str, Any] | None = None
    priority: int | None = None
    redelivered = False
    replaced_task_nesting = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.update(*args, **kwargs)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.update(*args, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def as_execution_options(self) -> dict[str, Any]:
        limit_hard, limit_soft = self.timelimit or (None, None)
        return {
            "task_id": self.id,
            "root_id": self.root_id,
            "parent_id": self.parent_id,
            "group_id": self.group,
            "group_index": self.group_index,
            "shadow": self.shadow,
            "chord": self.chord,
            "chain": self.chain,
            "link": self.callbacks,
            "link_error": self.errbacks,
            "expires": self.expires,
            "soft_time_limit": limit_soft,
            "time_limit": limit_hard,
            "headers": self.headers,
            "retries": self.retries,
            "reply_to": self.reply_to,
            "origin": self.origin,
        }

    @property
    def time_limit(self) -> float | None:
        """The hard time limit the message carries (``timelimit[0]``)."""
        return (self.timelimit or (None, None))[0]

    @property
    def soft_time_limit(self) -> float | None:
        """The soft time limit the message carries (``timelimit[1]``)."""
        limits = self.timelimit or (None, None)
        return limits[1] if len(limits) > 1 else None

    def __repr__(self) -> str:
        return f"<Context: {vars(self)!r}>"
