"""Monitoring events in Celery's format, at Celery's module path (``celery.events``).

A worker started with ``-E`` (``worker_send_task_events``) publishes task-received,
-started, -succeeded, -failed, -retried, -revoked and worker-online/-heartbeat/-offline;
a producer with ``task_send_sent_event`` publishes task-sent. They go where Celery's event
dispatcher puts them on a Redis broker, so Flower, celery-exporter and ``celery events``
see our workers as Celery workers. ``app.events`` gives monitoring scripts the objects
they use: ``Dispatcher``, ``Receiver``, ``State``.
"""

from __future__ import annotations

from typing import Any

from .dispatcher import Event, EventDispatcher, group_from, routing_key_of
from .receiver import EventReceiver
from .state import State

__all__ = [
    "Event",
    "EventDispatcher",
    "EventReceiver",
    "Events",
    "State",
    "event_exchange",
    "get_exchange",
    "group_from",
    "routing_key_of",
]


def get_exchange(conn: Any = None, name: str = "celeryev") -> Any:
    """The events exchange as kombu describes it (fanout, as Celery uses on Redis)."""
    import kombu

    exchange: Any = kombu.Exchange  # type: ignore[attr-defined]  # kombu is untyped
    return exchange(name, type="fanout")


def __getattr__(name: str) -> Any:
    if name == "event_exchange":
        return get_exchange()
    raise AttributeError(name)


class Events:
    """``app.events``: factories bound to the app, as in Celery."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def Dispatcher(  # noqa: N802
        self, connection: Any = None, hostname: str | None = None, enabled: bool = True, **kw: Any
    ) -> EventDispatcher:
        return EventDispatcher(connection, hostname=hostname, enabled=enabled, app=self.app, **kw)

    def Receiver(  # noqa: N802
        self, channel: Any = None, handlers: Any = None, routing_key: str = "#", **kw: Any
    ) -> EventReceiver:
        return EventReceiver(
            channel, handlers=handlers, routing_key=routing_key, app=self.app, **kw
        )

    def State(self, **kwargs: Any) -> State:  # noqa: N802
        return State(**kwargs)

    def default_dispatcher(self, hostname: str | None = None, **kw: Any) -> EventDispatcher:
        return self.Dispatcher(hostname=hostname, **kw)
