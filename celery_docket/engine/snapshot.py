"""Read-only views of the engine's structures: heartbeats, queue depths, parked work.

Inspection, dashboards and exporters need to see what the engine holds. Reading it here keeps
the key names and the one-letter record fields inside the engine, so their layout can change
without touching the facade; callers get plain values and small dataclasses. Every function
costs a fixed number of round trips whatever the sizes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cluster import mget
from .keys import GROUP, heartbeat_key, workers_key
from .lua import Script
from .scripts import PARKED

if TYPE_CHECKING:
    from .client import Client as Docket

_parked_script = Script(PARKED)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def heartbeats(docket: Docket) -> list[dict[str, Any]]:
    """The payloads of every live consumer (one round trip for the index, one for the keys).

    Index entries whose heartbeat key is gone (expired: the worker died) are dropped from the
    index; payloads that are not JSON are skipped.
    """
    r = docket.redis
    index = workers_key(docket.prefix)
    members = [_text(m) for m in r.zrange(index, 0, -1)]
    if not members:
        return []
    values = mget(r, [heartbeat_key(docket.prefix, m) for m in members])
    out: list[dict[str, Any]] = []
    gone: list[str] = []
    for member, raw in zip(members, values, strict=True):
        if raw is None:
            gone.append(member)
            continue
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    if gone:
        try:
            r.zrem(index, *gone)
        except Exception:  # noqa: BLE001 - tidying only
            pass
    return out


@dataclass(frozen=True)
class HeldDelivery:
    """One delivery a consumer holds, as its heartbeat lists it."""

    message_id: str | None
    execution_id: str | None
    queue: str | None
    function: str | None
    delivery_count: int
    received_at: float | None
    started_at: float | None
    """When it started running; None while it waits for a slot or for its commit."""


def held_deliveries(beat: dict[str, Any]) -> list[HeldDelivery]:
    """The deliveries a heartbeat payload (from :func:`heartbeats`) says its consumer holds."""
    return [
        HeldDelivery(
            message_id=d.get("m"),
            execution_id=d.get("i"),
            queue=d.get("q"),
            function=d.get("n"),
            delivery_count=int(d.get("c") or 1),
            received_at=d.get("r"),
            started_at=d.get("s"),
        )
        for d in beat.get("deliveries") or ()
    ]


@dataclass(frozen=True)
class QueueCounts:
    """How much one queue holds."""

    length: int
    """Entries in the ready stream, delivered or not."""
    parked: int
    """Executions waiting for their due time."""
    dead: int
    """Dead letters."""
    pending: int
    """Entries delivered to a worker and not yet acknowledged."""

    @property
    def ready(self) -> int:
        """Entries nobody was handed yet."""
        return max(0, self.length - self.pending)


def queue_counts(docket: Docket, queues: Sequence[str]) -> dict[str, QueueCounts]:
    """``QueueCounts`` of each queue, in two round trips; a sharded queue's are the sums
    over its shards, so it reads as one queue."""
    names = list(queues)
    physical = {q: docket.shard_queues(q) for q in names}
    flat = list(dict.fromkeys(p for q in names for p in physical[q]))
    counts = _physical_counts(docket, flat)
    return {
        q: QueueCounts(
            length=sum(counts[p].length for p in physical[q]),
            parked=sum(counts[p].parked for p in physical[q]),
            dead=sum(counts[p].dead for p in physical[q]),
            pending=sum(counts[p].pending for p in physical[q]),
        )
        for q in names
    }


def _physical_counts(docket: Docket, names: list[str]) -> dict[str, QueueCounts]:
    pipe = docket.redis.pipeline(transaction=False)
    for q in names:
        k = docket.keys(q)
        pipe.xlen(k.stream)
        pipe.zcard(k.due)
        pipe.xlen(k.dead)
        pipe.exists(k.stream)
    raw = pipe.execute() if names else []
    exists = [bool(raw[i * 4 + 3]) for i in range(len(names))]
    pending_raw: list[Any] = []
    if any(exists):
        pending_pipe = docket.redis.pipeline(transaction=False)
        for q, there in zip(names, exists, strict=True):
            if there:
                pending_pipe.xpending(docket.keys(q).stream, GROUP)
        pending_raw = pending_pipe.execute(raise_on_error=False)
    pending_iter = iter(pending_raw)
    out: dict[str, QueueCounts] = {}
    for i, q in enumerate(names):
        pending = 0
        if exists[i]:
            summary = next(pending_iter)
            if isinstance(summary, dict):
                pending = int(summary.get("pending") or 0)
        out[q] = QueueCounts(
            length=int(raw[i * 4]),
            parked=int(raw[i * 4 + 1]),
            dead=int(raw[i * 4 + 2]),
            pending=pending,
        )
    return out


@dataclass(frozen=True)
class ParkedEntry:
    """One parked execution."""

    execution_id: str
    due_ms: float
    body: bytes
    perpetual: bool


def parked(docket: Docket, queue: str, limit: int = 10_000) -> list[ParkedEntry]:
    """Parked executions of ``queue``, soonest first, in one round trip per shard (a
    sharded queue's shards merged)."""
    out: list[ParkedEntry] = []
    for shard in docket.shard_queues(queue):
        k = docket.keys(shard)
        flat = _parked_script(docket.redis, [k.due], [k.run_prefix, max(1, int(limit))])
        for j in range(0, len(flat), 4):
            member, score, body, perpetual = flat[j : j + 4]
            if not body:
                continue
            out.append(ParkedEntry(_text(member), float(score), bytes(body), perpetual == b"1"))
    out.sort(key=lambda e: e.due_ms)
    return out[: max(1, int(limit))]


@dataclass(frozen=True)
class ExecutionRecord:
    """What the engine records of a parked or keyed execution."""

    state: str
    """``parked`` or ``queued`` (a keyed execution may be running while it says queued)."""
    body: bytes | None
    """The message while parked; None while queued (the body is in the stream then)."""
    message_id: str | None
    """The stream entry id while queued."""


def execution_records(
    docket: Docket, executions: Sequence[tuple[str, str]]
) -> list[ExecutionRecord | None]:
    """The record of each ``(queue, execution id)`` (None when there is none), in one
    round trip."""
    if not executions:
        return []
    pipe = docket.redis.pipeline(transaction=False)
    for q, i in executions:
        pipe.hmget(docket.keys(q).run(i), "s", "b", "m")
    out: list[ExecutionRecord | None] = []
    for state, body, mid in pipe.execute():
        if state is None:
            out.append(None)
            continue
        out.append(
            ExecutionRecord(
                _text(state),
                None if body is None else bytes(body),
                None if mid is None else _text(mid),
            )
        )
    return out


def stream_bodies(docket: Docket, entries: Sequence[tuple[str, str]]) -> list[bytes | None]:
    """The message body of each ``(queue, stream entry id)`` still in its stream."""
    if not entries:
        return []
    pipe = docket.redis.pipeline(transaction=False)
    for q, mid in entries:
        pipe.xrange(docket.keys(q).stream, mid, mid)
    out: list[bytes | None] = []
    for rows in pipe.execute():
        body = rows[0][1].get(b"b") if rows and rows[0][1] else None
        out.append(None if body is None else bytes(body))
    return out


def entries_added(docket: Docket, queues: Sequence[str]) -> dict[str, int | None]:
    """Every entry each queue's ready stream ever received (Redis 7's ``entries-added``;
    None where the server does not say, or the stream does not exist), in one round trip.

    Two readings give rates: what came in, and what was done (added minus still held). A
    sharded queue's is the sum over its shards (None if any shard does not say).
    """
    names = list(queues)
    if not names:
        return {}
    flat = [(q, p) for q in names for p in docket.shard_queues(q)]
    pipe = docket.redis.pipeline(transaction=False)
    for _q, p in flat:
        pipe.xinfo_stream(docket.keys(p).stream)
    out: dict[str, int | None] = {}
    for (q, _p), info in zip(flat, pipe.execute(raise_on_error=False), strict=True):
        value = info.get("entries-added") if isinstance(info, dict) else None
        if q not in out:
            out[q] = int(value) if value is not None else None
        elif out[q] is not None:
            out[q] = None if value is None else int(out[q] or 0) + int(value)
    return out


__all__ = [
    "ExecutionRecord",
    "HeldDelivery",
    "ParkedEntry",
    "QueueCounts",
    "entries_added",
    "execution_records",
    "heartbeats",
    "held_deliveries",
    "parked",
    "queue_counts",
    "stream_bodies",
]
