"""What ``celery-docket top`` shows, read from Redis once per refresh.

One :class:`Sample` is what ``celery-docket info`` reads (``queue_overview``: counts per
queue and the live workers from their heartbeats), plus the active tasks of each worker
and, per queue, how many messages its stream ever received (``XINFO STREAM``'s
``entries-added``, Redis 7). Two samples make rates: messages in per second, and done per
second (added minus still in the stream: acked, or moved to the dead-letter stream). The
:class:`Sampler` keeps the last samples for the throughput sparkline. No event stream and
no worker cooperation is needed: every figure is already in Redis.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: sparkline length, in refreshes
HISTORY = 60


@dataclass
class QueueRow:
    name: str
    ready: int
    parked: int
    reserved: int
    running: int
    dead: int
    workers: list[str] = field(default_factory=list)
    added: int | None = None  # every message the stream ever got (None: unknown)
    in_rate: float | None = None
    done_rate: float | None = None

    @property
    def in_stream(self) -> int:
        return self.ready + self.reserved + self.running


@dataclass
class WorkerRow:
    name: str
    pool: str
    concurrency: int
    processed: int
    uptime: float
    heartbeat_age: float
    queues: list[str]
    active: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Sample:
    """One refresh: every queue and live worker, at ``at`` (epoch seconds)."""

    at: float
    queues: list[QueueRow]
    workers: list[WorkerRow]
    throughput: float | None = None  # tasks done per second since the previous sample
    broker: str = ""


def read_sample(app: Any, queues: list[str] | None = None) -> Sample:
    """Read one :class:`Sample` (a few pipelined round trips)."""
    from ..control import live_nodes, queue_overview
    from ..engine.snapshot import entries_added
    from ..utils.urls import redact_url

    overview = queue_overview(app, queues)
    nodes = live_nodes(app)
    added = entries_added(app.docket, list(overview["queues"]))
    rows = [
        QueueRow(
            name=q,
            ready=int(v["ready"]),
            parked=int(v["scheduled"]),
            reserved=int(v["reserved"]),
            running=int(v["running"]),
            dead=int(v["dead"]),
            workers=list(v["workers"]),
            added=added.get(q),
        )
        for q, v in overview["queues"].items()
    ]
    workers = [
        WorkerRow(
            name=name,
            pool=str(w["pool"]),
            concurrency=int(w["concurrency"] or 0),
            processed=int(w["processed"] or 0),
            uptime=float(w["uptime"] or 0),
            heartbeat_age=float(w["heartbeat_age"] or 0),
            queues=list(w["queues"]),
            active=list(nodes[name].active) if name in nodes else [],
        )
        for name, w in sorted(overview["workers"].items())
    ]
    return Sample(time.time(), rows, workers, broker=redact_url(str(app.broker_url)))


def with_rates(sample: Sample, previous: Sample | None) -> Sample:
    """Fill the rates of ``sample`` from the one before it (in place; returns it)."""
    if previous is None:
        return sample
    dt = sample.at - previous.at
    if dt <= 0:
        return sample
    before = {q.name: q for q in previous.queues}
    total: float | None = None
    for q in sample.queues:
        old = before.get(q.name)
        if old is None or q.added is None or old.added is None or q.added < old.added:
            continue  # new queue, unknown counter, or a stream that was deleted
        q.in_rate = (q.added - old.added) / dt
        done = (q.added - q.in_stream) - (old.added - old.in_stream)
        q.done_rate = max(0.0, done / dt)
        total = (total or 0.0) + q.done_rate
    if total is None:  # no stream counters: the workers' processed totals instead
        seen = {w.name: w.processed for w in previous.workers}
        deltas = [w.processed - seen[w.name] for w in sample.workers if w.name in seen]
        if deltas:
            total = max(0.0, sum(deltas) / dt)
    sample.throughput = total
    return sample


class Sampler:
    """Successive samples with their rates, and the recent throughput for the sparkline."""

    def __init__(self, app: Any, queues: list[str] | None = None, history: int = HISTORY):
        self.app = app
        self.queues = queues
        self.last: Sample | None = None
        self.history: deque[float] = deque(maxlen=history)

    def sample(self) -> Sample:
        current = with_rates(read_sample(self.app, self.queues), self.last)
        if current.throughput is not None:
            self.history.append(current.throughput)
        self.last = current
        return current
