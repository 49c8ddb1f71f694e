"""``app.amqp``: the queues an app declares, in Celery's shape (``celery.app.amqp``).

Our broker has no exchanges or bindings; what code reads from ``app.amqp`` is which queues
exist. ``app.amqp.queues`` maps queue names to kombu ``Queue`` objects: ``task_queues`` when
configured, else the default queue, plus any queue named in ``task_routes`` that
``task_create_missing_queues`` (on by default) would create.
"""

from __future__ import annotations

from typing import Any

from kombu.entity import Queue

__all__ = ("AMQP", "Queues")


class Queues(dict[str, Queue]):
    """Queue name -> kombu ``Queue``; ``select`` narrows to what a worker consumes."""

    def __init__(self, queues: Any = None, create_missing: bool = True) -> None:
        super().__init__()
        self.create_missing = create_missing
        for queue in queues or ():
            self.add(queue)

    def add(self, queue: Any, **kwargs: Any) -> Queue:
        if not isinstance(queue, Queue):
            queue = Queue(str(queue), **kwargs)
        self[queue.name] = queue
        return queue

    def __missing__(self, name: str) -> Queue:
        if self.create_missing:
            return self.add(name)
        raise KeyError(name)

    def select(self, include: Any) -> None:
        if include:
            names = {str(getattr(q, "name", q)) for q in include}
            for name in list(self):
                if name not in names:
                    del self[name]

    @property
    def consume_from(self) -> dict[str, Queue]:
        return dict(self)


class AMQP:
    """What Celery's ``app.amqp`` offers that applies to a Redis-streams broker."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._queues: Queues | None = None

    @property
    def queues(self) -> Queues:
        if self._queues is None:
            conf = self.app.conf
            configured = conf.get("task_queues")
            default = str(conf.get("task_default_queue") or "celery")
            self._queues = Queues(
                list(configured) if configured else [default],
                create_missing=bool(conf.get("task_create_missing_queues", True)),
            )
        return self._queues

    def Queues(self, queues: Any, create_missing: bool | None = None) -> Queues:  # noqa: N802
        if create_missing is None:
            create_missing = bool(self.app.conf.get("task_create_missing_queues", True))
        return Queues(queues, create_missing=create_missing)

    @property
    def default_queue(self) -> Queue:
        return self.queues[str(self.app.conf.get("task_default_queue") or "celery")]
