"""The app's queues and what they hold: which queues, per-queue counts, parked tasks, purge.

"The app's queues" is what Celery's ``purge`` and ``inspect`` mean: the configured queues and
static route targets, plus every queue that ever received work under the app's prefix. The
counts come from the engine's snapshot; the facade only adds what the heartbeats say runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..engine import admin, snapshot
from .nodes import live_nodes

__all__ = ["app_queues", "known_queues", "parked", "purge_queues", "queue_overview"]


def app_queues(app: Any) -> list[str]:
    """The app's queues: ``task_queues`` (or the default queue) and static route targets."""
    conf = app.conf
    names: list[str] = []
    for q in conf.get("task_queues") or ():
        names.append(str(getattr(q, "name", q)))
    if not names:
        names.append(str(conf.get("task_default_queue") or "celery"))
    routes = conf.get("task_routes") or ()
    if isinstance(routes, dict):
        routes = [routes]
    for router in routes if isinstance(routes, list | tuple) else ():
        if isinstance(router, dict):
            for dest in router.values():
                q = dest if isinstance(dest, str) else (dest or {}).get("queue")
                if q:
                    names.append(str(getattr(q, "name", q)))
    return list(dict.fromkeys(names))


def known_queues(app: Any) -> list[str]:
    """Every queue that ever received work under the app's prefix, and the app's own; a
    sharded queue once, by its own name (never its shards ``q#i``)."""
    try:
        docket = app.docket
        seen = [docket.logical_queue(q) for q in docket.queues()]
    except Exception:  # noqa: BLE001 - fall back to configuration only
        seen = []
    return sorted(set(seen) | set(app_queues(app)))


def purge_queues(app: Any, queues: Iterable[str], chunk: int = 5000) -> int:
    """Delete the waiting tasks of ``queues``: ready ones nobody was handed yet and
    scheduled (parked) ones. Delivered tasks and beat entries stay. Returns the count."""
    return admin.purge(app.docket, queues, chunk)


def parked(app: Any, queue: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """Parked executions of ``queue`` (soonest first): id, eta, body, perpetual."""
    return [
        {
            "id": e.execution_id,
            "eta": datetime.fromtimestamp(e.due_ms / 1000.0, timezone.utc).isoformat(),
            "body": e.body,
            "perpetual": e.perpetual,
        }
        for e in snapshot.parked(app.docket, queue, limit)
    ]


def queue_overview(app: Any, queues: Sequence[str] | None = None) -> dict[str, Any]:
    """Per queue: ready, scheduled, reserved, running and dead-lettered counts and the
    workers consuming it; and every live worker. A few round trips whatever the sizes."""
    docket = app.docket
    nodes = live_nodes(app)
    names = list(queues) if queues else known_queues(app)
    for node in nodes.values():
        for q in node.queues:
            if q not in names and not queues:
                names.append(q)
    counts = snapshot.queue_counts(docket, names)
    running: dict[str, int] = {}
    for node in nodes.values():
        for t in node.active:
            routed = docket.logical_queue(str((t.get("delivery_info") or {}).get("routing_key")))
            running[routed] = running.get(routed, 0) + 1
    out_queues: dict[str, Any] = {}
    for q in names:
        c = counts[q]
        pending = c.pending
        run = min(running.get(q, 0), pending)
        out_queues[q] = {
            "ready": c.ready,
            "scheduled": c.parked,
            "reserved": max(0, pending - run),
            "running": run,
            "dead": c.dead,
            "workers": sorted(n for n, v in nodes.items() if q in v.queues),
        }
    workers = {
        name: {
            "pool": node.pool,
            "concurrency": node.concurrency,
            "pid": node.main_pid,
            "processes": node.pids,
            "queues": node.queues,
            "active": len(node.active),
            "reserved": len(node.reserved),
            "processed": node.processed,
            "uptime": round(max(0.0, time.time() - node.started)) if node.started else 0,
            "heartbeat_age": round(max(0.0, time.time() - node.last_beat), 3),
        }
        for name, node in nodes.items()
    }
    return {"queues": out_queues, "workers": workers}
