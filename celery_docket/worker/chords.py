"""Chord bookkeeping: every header result counted, the body fired (or failed) exactly once.

Each header task's outcome (state and value) is written into the hash
``celery-docket-chord-<group id>`` under ``<group index>:<task id>``, so a redelivered task
rewrites its own field instead of counting twice. The chord's size is stored once its header
has been sent (``set_size``), plus one per task added by ``Task.replace``/``add_to_chord``.
Whoever sees the count reach the size sends the body inside a send-once scope named after
the chord and its run (``canvas/once.py``): each message of the body (one task, a chain's
first task, every member of a group body) carries an engine once token set in the same Lua
call that adds it. However many see the chord complete (redeliveries, races), each message is
added once; and a worker that dies after seeing it complete but before sending leaves no
token, so the redelivered last header task sends what is missing. As in Celery, a failed
header task fails the body with ``ChordError`` once the whole header is done.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from kombu.serialization import dumps, loads

from .. import states
from ..canvas import once
from ..canvas.base import as_list
from ..canvas.once import once_scope
from ..exceptions import ChordError
from ..keys import CHORD_EXTRA_PREFIX as EXTRA_PREFIX
from ..keys import CHORD_FAILED_PREFIX as FAILED_PREFIX
from ..keys import CHORD_FIRED_PREFIX as FIRED_PREFIX
from ..keys import CHORD_PREFIX
from ..keys import CHORD_SIZE_PREFIX as SIZE_PREFIX
from ..protocol import exception_to_meta, meta_to_exception

log = logging.getLogger("celery.chord")


def _ttl(app: Any) -> int:
    return app.result_ttl_ms() or 24 * 3600 * 1000


def _client(app: Any) -> Any:
    return app.results.backend.client


def reset(app: Any, group_id: str) -> None:
    """Forget an earlier run under this group id: re-applying a frozen chord is a new run.

    A chord sent as another chord's body is reset once: a replayed body send (its sender
    died half-way) must keep the counts its header tasks already reported."""
    if not once.first_time(_client(app), f"reset:{group_id}", _ttl(app)):
        return
    keys = [f"{p}{group_id}" for p in (CHORD_PREFIX, SIZE_PREFIX, EXTRA_PREFIX, FAILED_PREFIX)]
    _client(app).delete(*keys)


def set_size(app: Any, group_id: str, size: int, body: Any) -> None:
    """Record the header's size once it is sent; fire now if the header already finished."""
    client = _client(app)
    ttl = _ttl(app)
    # "<size>:<run>": the run names this sending of the chord in the body's once tokens, so
    # re-applying a frozen chord (same group id) is a new run whose body is sent again
    # (a replayed body send keeps the run it started, or its body could be sent twice)
    value = f"{size}:{uuid.uuid4().hex}"
    client.set(f"{SIZE_PREFIX}{group_id}", value, px=ttl, nx=once.active())
    _maybe_complete(app, group_id, body, parent_id=None)


def _size_and_run(raw: Any) -> tuple[int, str]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    size, _, run = text.partition(":")
    return int(size), run


def add_to_chord(app: Any, group_id: str, count: int = 1) -> None:
    """One more result to wait for (``Task.add_to_chord``, a task replaced by a group)."""
    client = _client(app)
    pipe = client.pipeline(transaction=True)
    pipe.incrby(f"{EXTRA_PREFIX}{group_id}", count)
    pipe.pexpire(f"{EXTRA_PREFIX}{group_id}", _ttl(app))
    pipe.execute()


def on_part_return(app: Any, request: Any, state: str, value: Any) -> None:
    """Count one header task's outcome toward its chord; complete the chord if it is the last."""
    group_id, index, task_id = _get(request, "group"), _get(request, "group_index"), request.id
    chord_sig = _get(request, "chord")
    if not group_id or not task_id or not chord_sig:
        log.error("chord member %s has no group id or chord; not counted", task_id)
        return
    if isinstance(value, BaseException):
        value = exception_to_meta(value)
    _ctype, _enc, payload = dumps({"s": state, "r": value}, serializer="json")
    key = f"{CHORD_PREFIX}{group_id}"
    field = f"{'' if index is None else int(index)}:{task_id}"
    pipe = _client(app).pipeline(transaction=True)
    pipe.hset(key, field, payload)
    pipe.pexpire(key, _ttl(app))
    pipe.execute()
    _maybe_complete(app, group_id, chord_sig, parent_id=task_id)


def _get(request: Any, name: str) -> Any:
    if isinstance(request, dict):
        return request.get(name)
    return getattr(request, name, None)


def _maybe_complete(app: Any, group_id: str, chord_sig: Any, parent_id: str | None) -> None:
    client = _client(app)
    pipe = client.pipeline(transaction=False)
    pipe.hlen(f"{CHORD_PREFIX}{group_id}")
    pipe.get(f"{SIZE_PREFIX}{group_id}")
    pipe.get(f"{EXTRA_PREFIX}{group_id}")
    filled, raw_size, extra = pipe.execute()
    if raw_size is None:
        return
    size, run = _size_and_run(raw_size)
    if int(filled) < size + int(extra or 0):
        return
    scope = f"{FIRED_PREFIX}{group_id}:{run}"
    raw = client.hgetall(f"{CHORD_PREFIX}{group_id}")
    parts = []
    for field, payload in raw.items():
        index, _, tid = field.decode().partition(":")
        parts.append(
            (int(index) if index else 1 << 30, tid, loads(payload, "application/json", "utf-8"))
        )
    parts.sort(key=lambda p: (p[0], p[1]))
    body = app.signature(chord_sig)
    for _index, tid, part in parts:
        if part["s"] in states.PROPAGATE_STATES:
            exc = _restore(part["r"])
            error = ChordError(f"Dependency {tid} raised {exc!r}")
            error.__cause__ = exc if isinstance(exc, BaseException) else None
            fail_body(app, group_id, body, error, scope)
            return
    values = _shaped(app, group_id, parts)
    fire_body(app, body, values, parent_id, scope)


def _shaped(app: Any, group_id: str, parts: list[Any]) -> list[Any]:
    """The header's values in order; a member that ended in a group (its header saved as a
    GroupResult by ``chord.run``) gives the list of that group's values, as in Celery."""
    from ..result import GroupResult

    flat = [part["r"] for _i, _t, part in parts]
    saved = GroupResult.restore(group_id, app=app)
    if saved is None or not any(isinstance(r, GroupResult) for r in saved.results):
        return flat
    by_id = {tid: part["r"] for _i, tid, part in parts}
    placed: set[str] = set()

    def value(node: Any) -> Any:
        if isinstance(node, GroupResult):
            return [value(member) for member in node.results]
        placed.add(node.id)
        return by_id.get(node.id)

    shaped = [value(node) for node in saved.results]
    # results added to the chord later (add_to_chord) come after, in their order
    return shaped + [part["r"] for _i, tid, part in parts if tid not in placed]


def _restore(value: Any) -> Any:
    if isinstance(value, dict) and "exc_type" in value:
        try:
            return meta_to_exception(value)
        except Exception:  # noqa: BLE001 - an undecodable stored error stays the raw value
            return value
    return value


def fire_body(app: Any, body: Any, values: list[Any], parent_id: str | None, scope: str) -> None:
    """Send the body; every message it sends is added at most once per ``scope``."""
    from ..canvas import Signature

    args = body.args if body.immutable else (values, *body.args)
    with once_scope(scope):
        if type(body) is not Signature:  # a group, chord or other canvas
            body.apply_async((values,), parent_id=parent_id)
            return
        options = dict(body.options)
        task_id = options.pop("task_id", None)
        options.pop("chord_size", None)
        if parent_id:
            options["parent_id"] = parent_id
        task = app.tasks.get(body.name)
        for attr in ("queue", "priority", "expires", "time_limit", "soft_time_limit"):
            value = getattr(task, attr, None) if task is not None else None
            if value is not None and options.get(attr) is None:
                options[attr] = value
        app.send_task(body.name, list(args), body.kwargs, task_id=task_id, **options)


def fail_body(app: Any, group_id: str, body: Any, exc: BaseException, scope: str) -> None:
    """Fail the body (every task of a group body) with ``exc``, once; call its errbacks.

    The failures are stored before the chord is marked failed (storing one twice is
    harmless; sent errbacks are once per scope), so a worker dying half-way leaves the rest
    to the redelivered header task instead of a body that stays PENDING."""
    from ..canvas import group
    from . import links

    failed = f"{FAILED_PREFIX}{group_id}"
    if _client(app).exists(failed):
        return
    log.error("Chord %r raised: %r", group_id, exc)
    if isinstance(body, group):
        # each task of a group body calls its own errbacks and the group's, each once
        own = as_list(body.options.get("link_error"))
        targets = []
        for task in body.tasks:
            holder, errbacks = _result_errbacks(app, task)
            targets.append((holder, _unique([*errbacks, *own])))
    else:
        holder = app.signature(body)
        targets = [(holder, as_list(holder.options.get("link_error")))]
    with once_scope(f"{scope}:failed"):
        for target, errbacks in targets:
            task_id = target.options.get("task_id")
            if not task_id:
                continue
            request = _FakeRequest(task_id, target, errbacks)
            app.store_result(task_id, exc, states.FAILURE, request=request)
            links.fail_request(app, request, exc, None)
    _client(app).set(failed, "1", px=_ttl(app))


def _result_errbacks(app: Any, sig: Any) -> tuple[Any, list[Any]]:
    """The signature whose result stands for ``sig`` (a chord's body, down nested chords)
    and the errbacks linked on the way (a group's and those of its tasks too)."""
    from ..canvas import chord, group

    sig = app.signature(sig)
    errbacks: list[Any] = []
    while isinstance(sig, chord) and sig.body is not None:
        errbacks.extend(as_list(sig.options.get("link_error")))
        sig = app.signature(sig.body)
    errbacks.extend(as_list(sig.options.get("link_error")))
    if isinstance(sig, group):
        for task in sig.tasks:
            errbacks.extend(_result_errbacks(app, task)[1])
    return sig, errbacks


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


class _FakeRequest:
    """A request for a chord body that never ran (its errbacks and chain still run/fail)."""

    def __init__(self, task_id: str, sig: Any, errbacks: Any = None) -> None:
        opts = sig.options
        self.id = task_id
        self.task = sig.name
        self.args = list(sig.args)
        self.kwargs = dict(sig.kwargs)
        self.group = opts.get("group_id")
        self.group_index = opts.get("group_index")
        self.chord = opts.get("chord")
        self.chain = opts.get("chain")
        # one errback given as a signature (``.set(link_error=sig)``) is a list of one
        self.errbacks = as_list(opts.get("link_error") if errbacks is None else errbacks)
        self.callbacks = as_list(opts.get("link"))
        self.root_id = opts.get("root_id")
        self.parent_id = opts.get("parent_id")
        self.is_eager = False
        self.delivery_info: dict[str, Any] = {}
        self.hostname = None
        self.headers: dict[str, Any] = {}
        self.ignore_result = False

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


def on_header_failed(app: Any, request: Any, exc: BaseException) -> None:
    """A header task that ended without running (revoked): counted as failed."""
    on_part_return(app, request, states.REVOKED, exc)
