"""``task-sent`` events from producers (``task_send_sent_event = True``).

Connected to ``after_task_publish`` at the first publish of a process whose app asks for
them (and in a worker that does, for the follow-ups it sends); otherwise nothing listens
and a publish costs what it did.
"""

from __future__ import annotations

from typing import Any

from .. import signals
from .dispatcher import EventDispatcher

_UID = "celery_docket.events.sent"
_dispatcher: EventDispatcher | None = None


def _on_published(
    sender: Any = None, headers: Any = None, routing_key: Any = None, exchange: Any = "", **kw: Any
) -> None:
    if _dispatcher is None or not headers:
        return
    _dispatcher.send(
        "task-sent",
        uuid=headers.get("id"),
        root_id=headers.get("root_id"),
        parent_id=headers.get("parent_id"),
        name=headers.get("task") or sender,
        args=headers.get("argsrepr"),
        kwargs=headers.get("kwargsrepr"),
        retries=headers.get("retries") or 0,
        eta=headers.get("eta"),
        expires=headers.get("expires"),
        queue=routing_key,
        exchange=exchange or "",
        routing_key=routing_key,
    )


def install(app: Any) -> EventDispatcher:
    """Publish ``task-sent`` for every task this process publishes (idempotent)."""
    global _dispatcher
    if _dispatcher is None or _dispatcher.app is not app:
        _dispatcher = EventDispatcher(app=app)
    signals.after_task_publish.connect(_on_published, weak=False, dispatch_uid=_UID)
    return _dispatcher


def uninstall() -> None:
    global _dispatcher
    signals.after_task_publish.disconnect(_on_published, dispatch_uid=_UID)
    _dispatcher = None
