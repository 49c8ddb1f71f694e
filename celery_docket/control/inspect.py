"""``app.control.inspect()``: Celery's inspect calls, answered from Redis at once.

Celery broadcasts each inspect command and waits the whole timeout for replies, missing busy
workers. Here each reply is computed from the workers' heartbeats and the engine's snapshot,
in Celery's reply shapes keyed by node name, so it comes at once and ``timeout`` is accepted
but not waited for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine import snapshot
from .nodes import NodeView, live_nodes
from .queues import parked
from .report import report_text
from .revoke import revoked_ids
from .shapes import message_info, public_info, queue_as_dict

__all__ = ["INSPECT_COMMANDS", "UNSUPPORTED_INSPECT", "Inspect"]

INSPECT_COMMANDS = (
    "active",
    "active_queues",
    "ping",
    "query_task",
    "registered",
    "report",
    "reserved",
    "revoked",
    "scheduled",
    "stats",
)
UNSUPPORTED_INSPECT = {
    "clock": "there is no logical clock (no events are sent)",
    "conf": "a worker's configuration is not published to Redis",
    "hello": "workers do not synchronise through 'mingle' here",
    "memdump": "memory sampling is not available",
    "memsample": "memory sampling is not available",
    "objgraph": "object graphs are not available",
}


class Inspect:
    """``app.control.inspect()``: Celery's inspect calls, answered from Redis at once.

    Each call returns ``{node name: reply}`` (``None`` when no worker is alive, as Celery
    returns when nobody replied). ``timeout`` is accepted and not waited for.
    """

    def __init__(
        self,
        destination: Any = None,
        timeout: float = 1.0,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        connection: Any = None,
        app: Any = None,
        limit: int | None = None,
        pattern: str | None = None,
        matcher: str | None = None,
    ) -> None:
        self.app = app
        self.destination = destination
        self.timeout = timeout
        self.callback = callback
        self.connection = connection
        self.limit = limit
        self.pattern = pattern
        self.matcher = matcher

    # -- plumbing

    def _nodes(self) -> dict[str, NodeView]:
        return live_nodes(self.app, self.destination, self.pattern, self.matcher, self.limit)

    def _reply(self, replies: dict[str, Any]) -> dict[str, Any] | None:
        if self.callback is not None:
            for name, value in replies.items():
                self.callback({name: value})
        return replies or None

    def _request(self, command: str, **kwargs: Any) -> dict[str, Any] | None:
        """Run inspect ``command`` by name (what ``celery-docket inspect`` calls)."""
        if command in UNSUPPORTED_INSPECT:
            raise NotImplementedError(
                f"inspect {command} is not supported by celery-docket: "
                f"{UNSUPPORTED_INSPECT[command]}"
            )
        if command not in INSPECT_COMMANDS:
            raise NotImplementedError(f"celery-docket has no inspect command {command!r}")
        method = getattr(self, command)
        if command == "query_task":
            return method(*(kwargs.get("ids") or ()))
        if command == "registered":
            return method(*(kwargs.get("taskinfoitems") or ()))
        return method(**kwargs)

    # -- commands

    def ping(self, destination: Any = None) -> dict[str, Any] | None:
        if destination:
            self.destination = destination
        return self._reply({n: {"ok": "pong"} for n in self._nodes()})

    def active(self, safe: bool | None = None) -> dict[str, Any] | None:
        return self._reply(
            {n: [public_info(t, bool(safe)) for t in v.active] for n, v in self._nodes().items()}
        )

    def reserved(self, safe: bool | None = None) -> dict[str, Any] | None:
        return self._reply(
            {n: [public_info(t, bool(safe)) for t in v.reserved] for n, v in self._nodes().items()}
        )

    def scheduled(self, safe: bool | None = None, limit: int = 10_000) -> dict[str, Any] | None:
        nodes = self._nodes()
        if not nodes:
            return self._reply({})
        everyone = live_nodes(self.app)
        owner: dict[str, str] = {}
        for name in sorted(everyone):
            for q in everyone[name].queues:
                owner.setdefault(q, name)
        replies: dict[str, list[dict[str, Any]]] = {n: [] for n in nodes}
        for queue, node in owner.items():
            if node not in replies:
                continue
            for info in parked(self.app, queue, limit=limit):
                if info.get("perpetual"):
                    continue
                request = message_info(self.app, info["body"], queue, node)
                if request is None:
                    continue
                replies[node].append(
                    {
                        "eta": info["eta"],
                        "priority": request["delivery_info"]["priority"] or 0,
                        "request": public_info(request, bool(safe)),
                    }
                )
        return self._reply(replies)

    def revoked(self) -> dict[str, Any] | None:
        nodes = self._nodes()
        ids = revoked_ids(self.app) if nodes else []
        return self._reply({n: list(ids) for n in nodes})

    def registered(self, *taskinfoitems: Any) -> dict[str, Any] | None:
        items = [i for i in taskinfoitems if isinstance(i, str) and not i.startswith("_")]
        if not items:
            items = ["exchange", "routing_key", "rate_limit"]

        def describe(node: NodeView, name: str) -> str:
            attrs = node.task_attrs(name)
            shown = [f"{k}={attrs[k]}" for k in items if attrs.get(k) is not None]
            return f"{name} [{' '.join(shown)}]" if shown else name

        return self._reply(
            {
                n: [describe(v, t) for t in v.registered if not t.startswith("celery.")]
                for n, v in self._nodes().items()
            }
        )

    registered_tasks = registered

    def stats(self) -> dict[str, Any] | None:
        return self._reply({n: v.stats(self.app) for n, v in self._nodes().items()})

    def active_queues(self) -> dict[str, Any] | None:
        return self._reply(
            {n: [queue_as_dict(q) for q in v.queues] for n, v in self._nodes().items()}
        )

    def query_task(self, *ids: Any) -> dict[str, Any] | None:
        if len(ids) == 1 and isinstance(ids[0], list | tuple):
            ids = tuple(ids[0])
        wanted = {str(i) for i in ids}
        nodes = self._nodes()
        replies: dict[str, dict[str, Any]] = {n: {} for n in nodes}
        for name, node in nodes.items():
            for state, tasks in (("active", node.active), ("reserved", node.reserved)):
                for t in tasks:
                    if t.get("id") in wanted and t["id"] not in replies[name]:
                        replies[name][t["id"]] = [state, public_info(t)]
        missing = wanted - {i for r in replies.values() for i in r}
        if nodes and missing:
            everyone = live_nodes(self.app)
            owner: dict[str, str] = {}
            for n in sorted(everyone):
                for q in everyone[n].queues:
                    for shard in self.app.docket.shard_queues(q):
                        owner.setdefault(shard, n)
            asks = [(q, i) for q in owner for i in sorted(missing)]
            records = snapshot.execution_records(self.app.docket, asks)
            for (q, i), record in zip(asks, records, strict=True):
                node_name = owner[q]
                if record is None or record.state != "parked" or record.body is None:
                    continue
                if node_name not in replies:
                    continue
                info = message_info(self.app, record.body, q, node_name)
                if info is not None and i not in replies[node_name]:
                    replies[node_name][i] = ["scheduled", public_info(info)]
        return self._reply(replies)

    def report(self) -> dict[str, Any] | None:
        nodes = self._nodes()
        text = report_text(self.app) if nodes else ""
        return self._reply({n: {"ok": text} for n in nodes})

    def _unsupported(self, command: str) -> Any:
        raise NotImplementedError(
            f"inspect {command} is not supported by celery-docket: {UNSUPPORTED_INSPECT[command]}"
        )

    def clock(self) -> Any:
        return self._unsupported("clock")

    def conf(self, with_defaults: bool = False) -> Any:
        return self._unsupported("conf")

    def hello(self, from_node: str, revoked: Any = None) -> Any:
        return self._unsupported("hello")

    def memsample(self) -> Any:
        return self._unsupported("memsample")

    def memdump(self, samples: int = 10) -> Any:
        return self._unsupported("memdump")

    def objgraph(self, type: str = "Request", n: int = 200, max_depth: int = 10) -> Any:  # noqa: A002
        return self._unsupported("objgraph")
