"""Live worker nodes, read from the engine's heartbeats, and Celery's node selection
(destination, pattern, matcher, limit).

A node (``celery@host``) is the set of consumers that share its hostname: one per process for
prefork, one for threads and solo. Every inspect reply and every control answer is computed
from these views instead of being waited for, so a reply is instant and a dead worker drops
out when its heartbeat expires.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..engine import snapshot
from ..engine.cluster import mget
from ..keys import static_key
from .shapes import broker_info

__all__ = ["NodeView", "destinations", "live_nodes", "read_heartbeats"]


@dataclass
class NodeView:
    """One worker node (``celery@host``): the heartbeats of its consumers (one per
    process for prefork, one for threads/solo)."""

    name: str
    beats: list[dict[str, Any]] = field(default_factory=list)

    def _first(self, key: str, default: Any = None) -> Any:
        for b in self.beats:
            if b.get(key) is not None:
                return b[key]
        return default

    @property
    def pool(self) -> str:
        return str(self._first("pool_kind") or self._first("pool") or "threads")

    @property
    def main_pid(self) -> int:
        return int(self._first("main_pid") or self._first("pid") or 0)

    @property
    def pids(self) -> list[int]:
        return sorted({int(b["pid"]) for b in self.beats if b.get("pid")})

    @property
    def queues(self) -> list[str]:
        seen: dict[str, None] = {}
        for b in self.beats:
            for q in b.get("queues") or ():
                seen[q] = None
        return list(seen)

    @property
    def registered(self) -> list[str]:
        names: set[str] = set()
        for b in self.beats:
            names.update(b.get("registered") or ())
        return sorted(names)

    def task_attrs(self, name: str) -> dict[str, Any]:
        for b in self.beats:
            attrs = (b.get("task_attrs") or {}).get(name)
            if attrs is not None:
                return dict(attrs)
        return {}

    def _tasks(self, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for b in self.beats:
            out.extend(b.get(key) or ())
        return out

    @property
    def active(self) -> list[dict[str, Any]]:
        if any("active_tasks" in b for b in self.beats):
            return self._tasks("active_tasks")
        return [
            self._engine_info(d, b)
            for b in self.beats
            for d in snapshot.held_deliveries(b)
            if d.started_at
        ]

    @property
    def reserved(self) -> list[dict[str, Any]]:
        if any("reserved_tasks" in b for b in self.beats):
            return self._tasks("reserved_tasks")
        return [
            self._engine_info(d, b)
            for b in self.beats
            for d in snapshot.held_deliveries(b)
            if not d.started_at
        ]

    def _engine_info(self, d: snapshot.HeldDelivery, beat: dict[str, Any]) -> dict[str, Any]:
        """TASK_INFO of a worker that publishes only the engine's fields (a native worker)."""
        return {
            "id": d.execution_id,
            "name": d.function,
            "args": None,
            "kwargs": None,
            "type": d.function,
            "hostname": self.name,
            "time_start": d.started_at,
            "acknowledged": False,
            "delivery_info": {
                "exchange": "",
                "routing_key": d.queue,
                "priority": None,
                "redelivered": d.delivery_count > 1,
            },
            "worker_pid": beat.get("pid") if d.started_at else None,
        }

    @property
    def processed(self) -> int:
        return sum(int(b.get("processed") or 0) for b in self.beats)

    @property
    def started(self) -> float:
        values = [float(b["started"]) for b in self.beats if b.get("started")]
        return min(values) if values else 0.0

    @property
    def last_beat(self) -> float:
        values = [float(b["beat"]) for b in self.beats if b.get("beat")]
        return max(values) if values else 0.0

    @property
    def concurrency(self) -> int:
        if self.pool == "prefork":
            return len(self.beats)
        return int(self._first("concurrency") or 1)

    def total(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.beats:
            for name, count in (b.get("total") or {}).items():
                out[name] = out.get(name, 0) + int(count)
        return out

    def rusage(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for b in self.beats:
            for k, v in (b.get("rusage") or {}).items():
                if k == "maxrss":
                    out[k] = max(out.get(k, 0), v)
                else:
                    out[k] = out.get(k, 0) + v
        return out or {"N/A": True}

    def stats(self, app: Any) -> dict[str, Any]:
        pool = self.pool
        timeouts = self._first("timeouts") or [0, 0]
        info: dict[str, Any]
        if pool == "prefork":
            info = {
                "implementation": "celery_docket.engine.prefork:Supervisor",
                "max-concurrency": self.concurrency,
                "processes": self.pids,
                "max-tasks-per-child": self._first("max_tasks_per_child") or "N/A",
                "put-guarded-by-semaphore": False,
                "timeouts": [t or 0 for t in timeouts],
                "writes": "N/A",
            }
        elif pool == "solo":
            info = {
                "implementation": "celery_docket.engine.worker:Worker (solo)",
                "max-concurrency": 1,
                "processes": self.pids,
                "max-tasks-per-child": None,
                "put-guarded-by-semaphore": True,
                "timeouts": [],
            }
        else:
            info = {
                "implementation": "celery_docket.engine.worker:Worker (threads)",
                "max-concurrency": self.concurrency,
                "threads": self.concurrency,
            }
        return {
            "broker": broker_info(app),
            "clock": "0",
            "pid": self.main_pid,
            "pool": info,
            "prefetch_count": sum(int(b.get("prefetch_count") or 0) for b in self.beats),
            "rusage": self.rusage(),
            "total": self.total(),
            "uptime": round(max(0.0, time.time() - self.started)) if self.started else 0,
            "docket": {
                "consumers": sorted(str(b.get("consumer")) for b in self.beats),
                "processed": self.processed,
                "heartbeat_age": round(max(0.0, time.time() - self.last_beat), 3),
            },
        }


def read_heartbeats(app: Any) -> list[dict[str, Any]]:
    """The payloads of every live consumer, with the registered tasks each points at
    (stored once per content digest by the Celery worker) filled in."""
    out = snapshot.heartbeats(app.docket)
    r = app.docket.redis
    prefix = app.docket.prefix
    digests = sorted({str(b["static"]) for b in out if b.get("static")})
    if digests:
        static: dict[str, Any] = {}
        for digest, raw in zip(
            digests, mget(r, [static_key(prefix, d) for d in digests]), strict=True
        ):
            try:
                static[digest] = json.loads(raw) if raw is not None else {}
            except ValueError:
                static[digest] = {}
        for b in out:
            doc = static.get(str(b.get("static")))
            if doc:
                b.setdefault("registered", doc.get("registered") or [])
                b.setdefault("task_attrs", doc.get("task_attrs") or {})
    return out


def _match(name: str, pattern: str | None, matcher: str | None) -> bool:
    if not pattern:
        return True
    if matcher in (None, "glob"):
        return fnmatch.fnmatchcase(name, pattern)
    if matcher == "pcre":
        return re.search(pattern, name) is not None
    raise ValueError(f"unknown matcher {matcher!r} (use 'glob' or 'pcre')")


def destinations(destination: Any) -> list[str] | None:
    if destination is None or destination == "" or destination == []:
        return None
    if isinstance(destination, str):
        return [d.strip() for d in destination.split(",") if d.strip()]
    return [str(d) for d in destination]


def live_nodes(
    app: Any,
    destination: Any = None,
    pattern: str | None = None,
    matcher: str | None = None,
    limit: int | None = None,
) -> dict[str, NodeView]:
    """Live nodes by name (sorted), filtered like Celery's destination/pattern/limit."""
    nodes: dict[str, NodeView] = {}
    for beat in read_heartbeats(app):
        name = str(beat.get("hostname") or beat.get("node") or beat.get("consumer"))
        nodes.setdefault(name, NodeView(name)).beats.append(beat)
    wanted = destinations(destination)
    selected = {
        name: nodes[name]
        for name in sorted(nodes)
        if (wanted is None or name in wanted) and _match(name, pattern, matcher)
    }
    if limit:
        selected = dict(list(selected.items())[: int(limit)])
    return selected
