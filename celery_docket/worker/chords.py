"""Chord bookkeeping: header results per group index, body fired exactly once.

Each header task's result is written into the hash ``celery-docket-chord-<group id>`` under
its group index, so a redelivered header task rewrites its own slot instead of counting
twice. The task that sees every slot filled sends the body through the engine's ``once``
token, so however many header tasks see the chord complete (redeliveries, races), the body
is added once. A failing header task marks the body FAILURE with ``ChordError`` (as Celery).
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.serialization import dumps, loads

from .. import states
from ..exceptions import ChordError

log = logging.getLogger("celery.chord")

CHORD_PREFIX = "celery-docket-chord-"
FIRED_PREFIX = "celery-docket-chord-fired-"


def _size(body: dict[str, Any]) -> int:
    return int((body.get("options") or {}).get("chord_size") or 0)


def on_header_done(app: Any, request: Any, retval: Any) -> None:
    """Record one header result; fire the body when the header is complete."""
    body = app.signature(request.chord)
    size = _size(body)
    group_id, index = request.group, request.group_index
    if not group_id or index is None or size <= 0:
        log.error("chord header %s has no group id/index/size; body not tracked", request.id)
        return
    client = app.results.backend.client
    key = f"{CHORD_PREFIX}{group_id}"
    _ctype, _enc, payload = dumps(retval, serializer="json")
    ttl = app.result_ttl_ms() or 24 * 3600 * 1000
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, str(index), payload)
    pipe.hlen(key)
    pipe.pexpire(key, ttl)
    _set, filled, _exp = pipe.execute()
    if int(filled) < size:
        return
    raw = client.hgetall(key)
    values = [loads(raw[str(i).encode()], "application/json", "utf-8") for i in range(size)]
    options = dict(body.options)
    options.pop("chord_size", None)
    body_id = options.pop("task_id", None)
    args = body.args if body.immutable else (values, *body.args)
    app.send_task(
        body.name,
        list(args),
        body.kwargs,
        task_id=body_id,
        _once=f"{FIRED_PREFIX}{group_id}",
        **{
            k: v
            for k, v in options.items()
            if k in ("queue", "countdown", "priority", "link", "link_error", "expires")
        },
    )


def on_header_failed(app: Any, request: Any, exc: BaseException) -> None:
    """Mark the body FAILURE with ChordError, once, as Celery does."""
    body = app.signature(request.chord)
    body_id = (body.options or {}).get("task_id")
    group_id = request.group
    if not body_id or not group_id:
        return
    client = app.results.backend.client
    ttl = app.result_ttl_ms() or 24 * 3600 * 1000
    if not client.set(f"{FIRED_PREFIX}{group_id}", request.id, nx=True, px=ttl):
        return
    error = ChordError(f"Dependency {request.id} raised {exc!r}")
    app.store_result(body_id, error, states.FAILURE)
