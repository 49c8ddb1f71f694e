"""An in-memory picture of the cluster built from events (Celery's ``events.state``).

Monitors keep one :class:`State`, feed it every event (``handlers={'*': state.event}``)
and read ``state.tasks`` and ``state.workers``. Late or reordered events do not move a
task backwards: an older event only updates a state it outranks (Celery's precedence,
finished states first). Memory is bounded (``max_tasks_in_memory``, oldest dropped).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

from .. import states

#: a worker is offline when no heartbeat came for ``freq * HEARTBEAT_EXPIRE_WINDOW / 100`` s
HEARTBEAT_EXPIRE_WINDOW = 200

TASK_EVENT_TO_STATE = {
    "sent": states.PENDING,
    "received": states.RECEIVED,
    "started": states.STARTED,
    "failed": states.FAILURE,
    "retried": states.RETRY,
    "succeeded": states.SUCCESS,
    "revoked": states.REVOKED,
    "rejected": states.REJECTED,
}

_TASK_FIELDS = (
    "uuid",
    "name",
    "state",
    "received",
    "sent",
    "started",
    "rejected",
    "succeeded",
    "failed",
    "retried",
    "revoked",
    "args",
    "kwargs",
    "eta",
    "expires",
    "retries",
    "result",
    "exception",
    "traceback",
    "runtime",
    "timestamp",
    "root_id",
    "parent_id",
    "exchange",
    "routing_key",
    "queue",
    "clock",
    "client",
)


_SKIP = frozenset(("type", "hostname", "local_received", "uuid", "pid", "utcoffset", "timestamp"))


class Worker:
    """A worker as its events describe it."""

    def __init__(self, hostname: str | None = None, **fields: Any) -> None:
        self.hostname = hostname
        self.pid: int | None = None
        self.freq = 60.0
        self.heartbeats: list[float] = []
        self.active: int | None = None
        self.processed: int | None = None
        self.loadavg: Any = None
        self.sw_ident: str | None = None
        self.sw_ver: str | None = None
        self.sw_sys: str | None = None
        self.clock = 0
        self.offline = False
        self.update(fields)

    def update(self, fields: dict[str, Any]) -> None:
        for key, value in fields.items():
            if key not in ("type", "local_received", "timestamp", "utcoffset"):
                setattr(self, key, value)

    def event(self, type: str, timestamp: float, fields: dict[str, Any]) -> None:  # noqa: A002
        self.update(fields)
        if type == "offline":
            self.offline = True
            self.heartbeats.clear()
            return
        self.offline = False
        self.heartbeats = [*self.heartbeats[-29:], timestamp]

    @property
    def heartbeat_expires(self) -> float:
        last = self.heartbeats[-1] if self.heartbeats else 0.0
        return last + float(self.freq or 60.0) * HEARTBEAT_EXPIRE_WINDOW / 100

    @property
    def alive(self) -> bool:
        return bool(self.heartbeats) and time.time() < self.heartbeat_expires

    @property
    def status_string(self) -> str:
        return "ONLINE" if self.alive else "OFFLINE"

    @property
    def id(self) -> tuple[str | None, int | None]:
        return self.hostname, self.pid

    def __repr__(self) -> str:
        return f"<Worker: {self.hostname} ({self.status_string}) clock:{self.clock}>"


class Task:
    """A task as its events describe it."""

    clock: Any = None
    client: Any = None  # the producer's hostname (from task-sent)

    def __init__(self, uuid: str | None = None, **fields: Any) -> None:
        self.uuid = uuid
        self.state: str | None = states.PENDING
        self.name: str | None = None
        self.worker: Worker | None = None
        self.timestamp: float | None = None
        for key in _TASK_FIELDS:
            if not hasattr(self, key):
                setattr(self, key, None)
        for key, value in fields.items():
            setattr(self, key, value)

    def event(self, kind: str, timestamp: float, fields: dict[str, Any]) -> None:
        new = TASK_EVENT_TO_STATE.get(kind, kind.upper())
        if kind in TASK_EVENT_TO_STATE:
            setattr(self, kind, timestamp)  # task.succeeded = when it succeeded
        behind = (
            new != states.RETRY
            and self.state != states.RETRY
            and states.precedence(new) > states.precedence(self.state)
        )
        for key, value in fields.items():
            if key in _SKIP:
                continue
            if behind and getattr(self, key, None) is not None:
                continue  # an event from before the current state only fills gaps
            setattr(self, key, value)
        if not behind:
            self.state = new
            self.timestamp = timestamp

    @property
    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def info(self, fields: Any = None, extra: Any = ()) -> dict[str, Any]:
        names = list(fields or _TASK_FIELDS) + list(extra)
        return {k: getattr(self, k) for k in names if getattr(self, k, None) is not None}

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k, None) for k in _TASK_FIELDS}
        out["worker"] = self.worker.hostname if self.worker is not None else None
        return out

    def __repr__(self) -> str:
        return f"<Task: {self.name}({self.uuid}) {self.state} clock:{self.clock}>"


_Worker: TypeAlias = Worker
_Task: TypeAlias = Task


class State:
    """Workers and tasks seen in events; ``event(e)`` is the handler to give a receiver."""

    Worker: type[_Worker] = _Worker
    Task: type[_Task] = _Task

    def __init__(
        self,
        callback: Callable[[State, dict[str, Any]], Any] | None = None,
        max_workers_in_memory: int = 5000,
        max_tasks_in_memory: int = 10000,
        on_node_join: Callable[[_Worker], Any] | None = None,
        on_node_leave: Callable[[_Worker], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.callback = callback
        self.max_workers_in_memory = max_workers_in_memory
        self.max_tasks_in_memory = max_tasks_in_memory
        self.on_node_join = on_node_join
        self.on_node_leave = on_node_leave
        self.workers: OrderedDict[str, _Worker] = OrderedDict()
        self.tasks: OrderedDict[str, _Task] = OrderedDict()
        self.event_count = 0
        self.task_count = 0
        self._mutex = threading.Lock()

    def clear(self, ready: bool = True) -> None:
        with self._mutex:
            if ready:
                self.tasks = OrderedDict((k, t) for k, t in self.tasks.items() if not t.ready)
            else:
                self.tasks.clear()
            self.event_count = 0
            self.task_count = 0

    def freeze_while(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._mutex:
            return fun(*args, **kwargs)

    def get_or_create_worker(self, hostname: str, **fields: Any) -> tuple[_Worker, bool]:
        worker = self.workers.get(hostname)
        if worker is not None:
            worker.update(fields)
            return worker, False
        worker = self.workers[hostname] = self.Worker(hostname, **fields)
        while len(self.workers) > self.max_workers_in_memory:
            self.workers.popitem(last=False)
        return worker, True

    def get_or_create_task(self, uuid: str) -> tuple[_Task, bool]:
        task = self.tasks.get(uuid)
        if task is not None:
            return task, False
        task = self.tasks[uuid] = self.Task(uuid)
        while len(self.tasks) > self.max_tasks_in_memory:
            self.tasks.popitem(last=False)
        return task, True

    def event(self, event: dict[str, Any]) -> tuple[Any, bool]:
        """Apply one event; returns ``((object, subject), created)`` as Celery does."""
        with self._mutex:
            result = self._event(event)
        if self.callback is not None:
            self.callback(self, event)
        return result

    def _event(self, event: dict[str, Any]) -> tuple[Any, bool]:
        self.event_count += 1
        group, _, subject = str(event.get("type", "")).partition("-")
        timestamp = float(event.get("timestamp") or time.time())
        hostname = event.get("hostname")
        if group == "worker" and hostname:
            worker, created = self.get_or_create_worker(str(hostname))
            was_alive = worker.alive
            worker.event(subject, timestamp, event)
            if not was_alive and worker.alive and self.on_node_join is not None:
                self.on_node_join(worker)
            if subject == "offline" and self.on_node_leave is not None:
                self.on_node_leave(worker)
            return (worker, subject), created
        if group == "task" and event.get("uuid"):
            task, created = self.get_or_create_task(str(event["uuid"]))
            if subject == "sent":
                task.client = hostname
            elif hostname:
                task.worker, _ = self.get_or_create_worker(str(hostname))
            task.event(subject, timestamp, event)
            if subject == "received":
                self.task_count += 1
            return (task, subject), created
        return (None, subject), False

    def itertasks(self, limit: int | None = None) -> Iterator[tuple[str, _Task]]:
        for index, item in enumerate(list(self.tasks.items())):
            if limit is not None and index >= limit:
                return
            yield item

    def tasks_by_time(
        self, limit: int | None = None, reverse: bool = True
    ) -> list[tuple[str, _Task]]:
        ordered = sorted(self.tasks.items(), key=lambda kv: kv[1].timestamp or 0, reverse=reverse)
        return ordered[:limit] if limit is not None else ordered

    tasks_by_timestamp = tasks_by_time

    def tasks_by_type(self, name: str, limit: int | None = None) -> list[tuple[str, _Task]]:
        found = [(u, t) for u, t in self.tasks_by_time() if t.name == name]
        return found[:limit] if limit is not None else found

    def tasks_by_worker(self, hostname: str, limit: int | None = None) -> list[tuple[str, _Task]]:
        found = [
            (u, t)
            for u, t in self.tasks_by_time()
            if t.worker is not None and t.worker.hostname == hostname
        ]
        return found[:limit] if limit is not None else found

    def task_types(self) -> list[str]:
        return sorted({t.name for t in self.tasks.values() if t.name})

    def alive_workers(self) -> list[_Worker]:
        return [w for w in self.workers.values() if w.alive]

    def __repr__(self) -> str:
        return f"<State: events={self.event_count} tasks={self.task_count}>"
