"""Revoking tasks: remembered in Redis, taken out of the engine, told to the workers.

A revocation must outlive a worker restart, so it is a member of ``<prefix>:revoked`` (task id
scored by its expiry) that every worker loads and keeps in sync. Work that is parked or not
yet delivered is cancelled in the engine at once and its state written REVOKED, as Celery
does for a waiting task; executions removed before any worker saw them are listed in
``<prefix>:revoked:signals`` so that one worker still sends ``task_revoked`` for each. What
runs is left to its worker, which the control notice reaches (and, with ``terminate``,
signals the process running it).
"""

from __future__ import annotations

import base64
import json
import logging
import signal as _signal
import time
from typing import Any

from .. import states
from ..engine import admin, snapshot
from ..keys import control_channel, revoked_key, revoked_signals_key
from .nodes import live_nodes
from .notices import encode_notice
from .queues import known_queues
from .shapes import as_text, message_info

log = logging.getLogger("celery_docket.control")

__all__ = [
    "REVOKES_MAX",
    "REVOKE_EXPIRES",
    "revocable_state",
    "revoke_expires",
    "revoke_tasks",
    "revoked_ids",
    "signum_of",
]

REVOKE_EXPIRES = 10800.0
"""Seconds a revocation is kept (Celery keeps revoked ids about three hours)."""
REVOKES_MAX = 50_000
"""Most revocations kept at once (Celery's in-memory limit is the same)."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def signum_of(value: Any) -> int:
    """``'SIGTERM'``, ``'TERM'``, ``'term'``, ``15`` or a ``Signals`` -> 15."""
    if value is None or value == "":
        return int(_signal.SIGTERM)
    if isinstance(value, int):
        return int(value)
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(getattr(_signal, text))
    except AttributeError:
        raise ValueError(f"unknown signal name {value!r}") from None


def revoke_expires(app: Any) -> float:
    """``docket_revoke_expires`` in seconds (a number or a timedelta; default 3 hours)."""
    value = app.conf.get("docket_revoke_expires")
    if value is None:
        return REVOKE_EXPIRES
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    return float(value)


def revoked_ids(app: Any) -> list[str]:
    r = app.docket.redis
    return [as_text(m) for m in r.zrangebyscore(revoked_key(app.docket.prefix), _now_ms(), "+inf")]


def _revoked_meta(app: Any, task_id: str, reason: str, record: dict[str, Any] | None) -> bytes:
    from ..exceptions import TaskRevokedError

    request = None
    if record is not None:
        request = _Request(record)
    return bytes(
        app.encode_meta(task_id, states.REVOKED, TaskRevokedError(reason), request=request)
    )


class _Request:
    """Enough of a request for ``encode_meta`` (name, args) from a parked message."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.task = info.get("name")
        self.args = info.get("args")
        self.kwargs = info.get("kwargs")
        self.hostname = None
        self.retries = None
        self.delivery_info = {"routing_key": info.get("queue")}
        self.group = None
        self.parent_id = None
        self.children = None


def revocable_state(app: Any, raw: bytes) -> bool:
    """Celery marks a task REVOKED only while it waits (PENDING, RECEIVED, RETRY, REJECTED)."""
    try:
        meta = json.loads(raw)
        status = meta.get("status")
    except (ValueError, AttributeError):
        return True
    return status in (states.PENDING, states.RECEIVED, states.RETRY, states.REJECTED, None)


def revoke_tasks(
    app: Any, ids: list[str], terminate: bool, signum: int | None, destination: Any
) -> None:
    """Revoke ``ids``: remember them, cancel what has not started, mark the waiting ones
    REVOKED and tell the workers (``destination`` selects which act on the notice)."""
    docket = app.docket
    r = docket.redis
    prefix = str(docket.prefix)
    now = _now_ms()
    expires_ms = now + int(revoke_expires(app) * 1000)
    maxlen = int(app.conf.get("docket_revokes_max") or REVOKES_MAX)
    queues = known_queues(app)
    store = app.results

    # 1. remember the revocations; look for parked/keyed executions and current states
    pipe = r.pipeline(transaction=False)
    pipe.zadd(revoked_key(prefix), dict.fromkeys(ids, expires_ms))
    pipe.zremrangebyscore(revoked_key(prefix), "-inf", now)
    pipe.zremrangebyrank(revoked_key(prefix), 0, -(maxlen + 1))
    pipe.execute()
    asks = [(p, i) for q in queues for p in docket.shard_queues(q) for i in ids]
    found: dict[str, tuple[str, str, bytes | None]] = {}
    entries: list[tuple[str, str, str]] = []
    for (q, i), record in zip(asks, snapshot.execution_records(docket, asks), strict=True):
        if record is not None and i not in found:
            found[i] = (q, record.state, record.body)
            if record.body is None and record.message_id is not None:
                entries.append((i, q, record.message_id))  # keyed and queued: body in the stream
    bodies = snapshot.stream_bodies(docket, [(q, mid) for _i, q, mid in entries])
    for (i, q, _mid), body in zip(entries, bodies, strict=True):
        if body is not None:
            found[i] = (q, found[i][1], body)
    current = store.get_many(ids) if hasattr(store, "get_many") else [store.get(i) for i in ids]

    # 2. what runs now (per the heartbeats) keeps its state to its worker, as in Celery
    running: set[str] = set()
    try:
        for node in live_nodes(app).values():
            running.update(str(t.get("id")) for t in node.active)
    except Exception:  # noqa: BLE001 - a revoke must not fail on inspection
        pass

    # 3. take parked/queued executions out of the engine, mark the states REVOKED
    cancelled = [i for i, (_q, state, _b) in found.items() if i not in running or state == "parked"]
    outcomes = admin.cancel_many(docket, [(found[i][0], i) for i in cancelled])
    removed: list[dict[str, Any]] = []
    for i, outcome in zip(cancelled, outcomes, strict=True):
        q, _state, body = found[i]
        if outcome in ("parked", "queued") and body is not None:
            removed.append({"id": i, "queue": q, "body": base64.b64encode(body).decode()})
    writes: list[tuple[str, bytes]] = []
    for i, raw in zip(ids, current, strict=True):
        if i in running:
            continue
        if raw is not None and not revocable_state(app, raw):
            continue
        info = None
        where, _state, body = found.get(i, ("", "", None))
        if body is not None:
            info = message_info(app, body, where, "")
            if info is not None:
                info["queue"] = where
        writes.append((i, _revoked_meta(app, i, "revoked", info)))
    ttl = app.result_ttl_ms()
    if writes:
        client = store.backend.client
        wpipe = client.pipeline(transaction=False)
        for i, meta in writes:
            key = store.key(i)
            if ttl:
                wpipe.set(key, meta, px=ttl)
            else:
                wpipe.set(key, meta)
            wpipe.execute_command("PUBLISH", key, meta)  # cluster pipelines refuse publish()
        wpipe.execute()

    # 4. tell the workers (and leave the removed ones for a worker to announce)
    pipe = r.pipeline(transaction=False)
    if removed:
        pipe.rpush(revoked_signals_key(prefix), *[json.dumps(x) for x in removed])
        pipe.expire(revoked_signals_key(prefix), int(revoke_expires(app)))
    arguments = {
        "ids": ids,
        "expires_ms": expires_ms,
        "terminate": bool(terminate),
        "signum": signum,
        "signals": len(removed),
    }
    pipe.execute_command(
        "PUBLISH", control_channel(prefix), encode_notice("revoke", arguments, destination)
    )
    pipe.execute()
    docket.backend.notify()
    log.info("revoked %s%s", ", ".join(ids), " (terminate)" if terminate else "")
