"""``app.control``: revoke, inspect, purge and the other remote-control calls, from Redis.

Celery broadcasts each command and waits for the workers' replies, so an answer takes the
whole timeout and misses busy workers. Here every worker keeps its state in Redis (its
heartbeat key, refreshed every third of a lease and soon after each task starts or ends),
the queues are Redis structures, and revocations live in a sorted set. Inspection reads
those and answers at once, in Celery's reply shapes keyed by node name; a worker that died
drops out when its heartbeat expires.

Commands that change workers (revoke, shutdown, time limits, consumers, pool size) are
written to Redis where they must outlive a restart (revocations) and published on the
control channel every worker listens to. Replies to them are computed from the heartbeats
rather than waited for.

Keys (besides the engine's): ``<prefix>:revoked`` (sorted set, task id scored by the time
the revocation expires, in ms), ``<prefix>:revoked:signals`` (a list of revoked executions
removed from the engine before any worker saw them, so one worker still sends
``task_revoked`` for each) and the pub/sub channel ``<prefix>:control``.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import os
import platform
import re
import signal as _signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from . import states
from .engine.keys import GROUP, QueueKeys, heartbeat_key
from .engine.lua import Pipeline, Script
from .engine.scripts import CANCEL
from .engine.worker import workers_key
from .keys import control_channel, revoked_key, revoked_signals_key, static_key
from .utils.urls import redact_url

log = logging.getLogger("celery_docket.control")

__all__ = [
    "Control",
    "DeadEntry",
    "Inspect",
    "NodeView",
    "app_queues",
    "control_channel",
    "dead_entries",
    "live_nodes",
    "purge_dead",
    "purge_queues",
    "queue_overview",
    "replay_dead",
    "report_text",
    "revoked_key",
    "revoked_signals_key",
    "signum_of",
]

REVOKE_EXPIRES = 10800.0
"""Seconds a revocation is kept (Celery keeps revoked ids about three hours)."""
REVOKES_MAX = 50_000
"""Most revocations kept at once (Celery's in-memory limit is the same)."""

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
CONTROL_COMMANDS = (
    "add_consumer",
    "cancel_consumer",
    "heartbeat",
    "pool_grow",
    "pool_shrink",
    "revoke",
    "shutdown",
    "terminate",
    "time_limit",
)
UNSUPPORTED_CONTROL = {
    "rate_limit": "task rate limits are accepted but not enforced by celery-docket yet",
    "autoscale": "there is no autoscaler; use pool_grow/pool_shrink or -c",
    "pool_restart": "restart the worker (a process manager does this) instead",
    "enable_events": "celery-docket sends no task events; inspect reads Redis instead",
    "disable_events": "celery-docket sends no task events",
    "election": "workers hold no elections here",
    "revoke_by_stamped_headers": "revocation is by task id only",
}


# -- small helpers -----------------------------------------------------------------------


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


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
    """Every queue that ever received work under the app's prefix, and the app's own."""
    try:
        seen = app.docket.queues()
    except Exception:  # noqa: BLE001 - fall back to configuration only
        seen = []
    return sorted(set(seen) | set(app_queues(app)))


def _jsonable(value: Any, fallback: str | None, limit: int = 4096) -> Any:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return fallback if fallback is not None else repr(value)[:limit]
    if len(text) > limit:
        return fallback if fallback is not None else text[:limit]
    return value


def message_info(
    app: Any,
    body: bytes,
    queue: str,
    hostname: str,
    *,
    time_start: float | None = None,
    worker_pid: int | None = None,
    acknowledged: bool = False,
    redelivered: bool = False,
    limit: int = 4096,
) -> dict[str, Any] | None:
    """Celery's TASK_INFO of an engine message body (None when it is not a task message,
    or cannot be read at all: one pathological body must never break a listing)."""
    try:
        return _message_info(
            app,
            body,
            queue,
            hostname,
            time_start=time_start,
            worker_pid=worker_pid,
            acknowledged=acknowledged,
            redelivered=redelivered,
            limit=limit,
        )
    except Exception:  # noqa: BLE001 - RecursionError on absurd nesting, and the like
        return None


def _message_info(
    app: Any,
    body: bytes,
    queue: str,
    hostname: str,
    *,
    time_start: float | None,
    worker_pid: int | None,
    acknowledged: bool,
    redelivered: bool,
    limit: int,
) -> dict[str, Any] | None:
    decoded = _fast_decode(body)
    if decoded is not None:
        h, props, raw_args, raw_kwargs = decoded
        argsrepr, kwargsrepr = h.get("argsrepr"), h.get("kwargsrepr")
        args: Any = _jsonable(raw_args, argsrepr, limit)
        kwargs: Any = _jsonable(raw_kwargs, kwargsrepr, limit)
    else:
        from .protocol import TaskMessage, decode_body

        try:
            message = TaskMessage.decode(body)
        except Exception:  # noqa: BLE001 - not ours to judge here
            return None
        h = message.headers
        argsrepr, kwargsrepr = h.get("argsrepr"), h.get("kwargsrepr")
        try:
            accept = app.conf.accept_content or ["json"]
            full_args, full_kwargs, _embed = decode_body(message, accept)
            args = _jsonable(full_args, argsrepr, limit)
            kwargs = _jsonable(full_kwargs, kwargsrepr, limit)
        except Exception:  # noqa: BLE001 - refused content type: show the reprs
            args, kwargs = argsrepr, kwargsrepr
        props = message.properties or {}
    return {
        "id": h.get("id"),
        "name": h.get("task"),
        "args": args,
        "kwargs": kwargs,
        "type": h.get("task"),
        "hostname": hostname,
        "time_start": time_start,
        "acknowledged": acknowledged,
        "delivery_info": {
            "exchange": "",
            "routing_key": queue,
            "priority": props.get("priority"),
            "redelivered": redelivered,
        },
        "worker_pid": worker_pid,
        "argsrepr": argsrepr,
        "kwargsrepr": kwargsrepr,
        "eta": h.get("eta"),
    }


def _fast_decode(body: bytes) -> tuple[dict[str, Any], dict[str, Any], Any, Any] | None:
    """(headers, properties, args, kwargs) of a plain JSON task message, read with the
    standard library; None for anything else (compressed, binary, another serializer),
    which then takes the full decoder."""
    if b"__type__" in body:  # kombu's typed values (datetime, Decimal...): full decoder
        return None
    try:
        env = json.loads(body)
        if (
            not isinstance(env, dict)
            or env.get("content-type") != "application/json"
            or env.get("body-encoding") != "utf-8"
        ):
            return None
        headers, props = env.get("headers"), env.get("properties") or {}
        if not isinstance(headers, dict) or headers.get("compression"):
            return None
        if not isinstance(headers.get("id"), str) or not isinstance(headers.get("task"), str):
            return None
        payload = json.loads(env["body"])
        args, kwargs = payload[0], payload[1]
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return None
    return headers, props if isinstance(props, dict) else {}, args, kwargs


def _public(info: dict[str, Any], safe: bool = False) -> dict[str, Any]:
    """TASK_INFO as Celery shows it (``safe``: the reprs instead of the values)."""
    out = {
        k: info.get(k)
        for k in (
            "id",
            "name",
            "args",
            "kwargs",
            "type",
            "hostname",
            "time_start",
            "acknowledged",
            "delivery_info",
            "worker_pid",
        )
    }
    if safe:
        out["args"], out["kwargs"] = info.get("argsrepr"), info.get("kwargsrepr")
    return out


def queue_as_dict(name: str) -> dict[str, Any]:
    """A queue described the way kombu's ``Queue.as_dict(recurse=True)`` does."""
    return {
        "name": name,
        "exchange": {
            "name": name,
            "type": "direct",
            "arguments": None,
            "durable": True,
            "passive": False,
            "auto_delete": False,
            "delivery_mode": None,
            "no_declare": False,
        },
        "routing_key": name,
        "queue_arguments": None,
        "binding_arguments": None,
        "consumer_arguments": None,
        "durable": True,
        "exclusive": False,
        "auto_delete": False,
        "no_ack": False,
        "alias": None,
        "bindings": [],
        "no_declare": None,
        "expires": None,
        "message_ttl": None,
        "max_length": None,
        "max_length_bytes": None,
        "max_priority": None,
    }


def broker_info(app: Any) -> dict[str, Any]:
    url = app.broker_url
    parts = urlsplit(url)
    scheme = parts.scheme or "memory"
    try:
        port = parts.port
    except ValueError:
        port = None
    path = parts.path.strip("/")
    return {
        "alternates": [],
        "connect_timeout": app.conf.get("broker_connection_timeout"),
        "failover_strategy": "round-robin",
        "heartbeat": float(app.conf.get("broker_heartbeat") or 0),
        "hostname": parts.hostname or (path if scheme == "memory" else None),
        "insist": False,
        "login_method": None,
        "port": port or (6379 if scheme.startswith("redis") else None),
        "ssl": scheme == "rediss",
        "transport": "memory" if scheme == "memory" else "redis",
        "transport_options": dict(app.conf.get("broker_transport_options") or {}),
        "uri_prefix": None,
        "userid": unquote(parts.username) if parts.username else None,
        "virtual_host": (path or "0") if scheme != "memory" else "/",
    }


# -- nodes (workers) from their heartbeats -----------------------------------------------


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
            for d in b.get("deliveries") or ()
            if d.get("s")
        ]

    @property
    def reserved(self) -> list[dict[str, Any]]:
        if any("reserved_tasks" in b for b in self.beats):
            return self._tasks("reserved_tasks")
        return [
            self._engine_info(d, b)
            for b in self.beats
            for d in b.get("deliveries") or ()
            if not d.get("s")
        ]

    def _engine_info(self, d: dict[str, Any], beat: dict[str, Any]) -> dict[str, Any]:
        """TASK_INFO of a worker that publishes only the engine's fields (a native worker)."""
        return {
            "id": d.get("i"),
            "name": d.get("n"),
            "args": None,
            "kwargs": None,
            "type": d.get("n"),
            "hostname": self.name,
            "time_start": d.get("s"),
            "acknowledged": False,
            "delivery_info": {
                "exchange": "",
                "routing_key": d.get("q"),
                "priority": None,
                "redelivered": int(d.get("c") or 1) > 1,
            },
            "worker_pid": beat.get("pid") if d.get("s") else None,
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
    """The payloads of every live consumer (one round trip for the index, one for the keys).

    Index entries whose heartbeat key is gone (expired: the worker died) are dropped.
    """
    r = app.docket.redis
    prefix = app.docket.prefix
    index = workers_key(prefix)
    members = [_text(m) for m in r.zrange(index, 0, -1)]
    if not members:
        return []
    values = r.mget([heartbeat_key(prefix, m) for m in members])
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
    digests = sorted({str(b["static"]) for b in out if b.get("static")})
    if digests:
        static: dict[str, Any] = {}
        for digest, raw in zip(
            digests, r.mget([static_key(prefix, d) for d in digests]), strict=True
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


def _destinations(destination: Any) -> list[str] | None:
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
    wanted = _destinations(destination)
    selected = {
        name: nodes[name]
        for name in sorted(nodes)
        if (wanted is None or name in wanted) and _match(name, pattern, matcher)
    }
    if limit:
        selected = dict(list(selected.items())[: int(limit)])
    return selected


# -- revocations -------------------------------------------------------------------------


def revoked_ids(app: Any) -> list[str]:
    r = app.docket.redis
    return [_text(m) for m in r.zrangebyscore(revoked_key(app.docket.prefix), _now_ms(), "+inf")]


def _revoked_meta(app: Any, task_id: str, reason: str, record: dict[str, Any] | None) -> bytes:
    from .exceptions import TaskRevokedError

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


# -- the Inspect API ---------------------------------------------------------------------


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
            return method(*(kwargs.get("ids") or ()))  # type: ignore[no-any-return]
        if command == "registered":
            return method(*(kwargs.get("taskinfoitems") or ()))  # type: ignore[no-any-return]
        return method(**kwargs)  # type: ignore[no-any-return]

    # -- commands

    def ping(self, destination: Any = None) -> dict[str, Any] | None:
        if destination:
            self.destination = destination
        return self._reply({n: {"ok": "pong"} for n in self._nodes()})

    def active(self, safe: bool | None = None) -> dict[str, Any] | None:
        return self._reply(
            {n: [_public(t, bool(safe)) for t in v.active] for n, v in self._nodes().items()}
        )

    def reserved(self, safe: bool | None = None) -> dict[str, Any] | None:
        return self._reply(
            {n: [_public(t, bool(safe)) for t in v.reserved] for n, v in self._nodes().items()}
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
                        "request": _public(request, bool(safe)),
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
                        replies[name][t["id"]] = [state, _public(t)]
        missing = wanted - {i for r in replies.values() for i in r}
        if nodes and missing:
            everyone = live_nodes(self.app)
            owner: dict[str, str] = {}
            for n in sorted(everyone):
                for q in everyone[n].queues:
                    owner.setdefault(q, n)
            r = self.app.docket.redis
            pipe = r.pipeline(transaction=False)
            asks = [(q, i) for q in owner for i in sorted(missing)]
            for q, i in asks:
                pipe.hmget(QueueKeys(self.app.docket.prefix, q).run(i), "s", "b")
            for (q, i), (state, body) in zip(asks, pipe.execute(), strict=True):
                node_name = owner[q]
                if state != b"parked" or body is None or node_name not in replies:
                    continue
                info = message_info(self.app, body, q, node_name)
                if info is not None and i not in replies[node_name]:
                    replies[node_name][i] = ["scheduled", _public(info)]
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


# -- the Control API ---------------------------------------------------------------------


class Control:
    """``app.control``: Celery's remote-control client over Redis (see the module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    # -- plumbing

    @property
    def _prefix(self) -> str:
        return str(self.app.docket.prefix)

    def _publish(self, command: str, arguments: dict[str, Any], destination: Any) -> None:
        notice = {
            "cmd": command,
            "args": arguments,
            "destination": _destinations(destination),
            "sent": time.time(),
        }
        self.app.docket.redis.publish(control_channel(self._prefix), json.dumps(notice))

    def _replies(
        self,
        make: Callable[[NodeView], Any],
        destination: Any,
        reply: bool,
        limit: int | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        pattern: str | None = None,
        matcher: str | None = None,
    ) -> list[dict[str, Any]] | None:
        if not reply:
            return None
        out = []
        for name, node in live_nodes(self.app, destination, pattern, matcher, limit).items():
            one = {name: make(node)}
            if callback is not None:
                callback(one)
            out.append(one)
        return out

    def inspect(
        self,
        destination: Any = None,
        timeout: float = 1.0,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        connection: Any = None,
        app: Any = None,
        limit: int | None = None,
        pattern: str | None = None,
        matcher: str | None = None,
    ) -> Inspect:
        return Inspect(
            destination, timeout, callback, connection, app or self.app, limit, pattern, matcher
        )

    # -- queues

    def purge(self, connection: Any = None) -> int:
        """Remove every waiting task of the app's queues; returns how many were removed."""
        return purge_queues(self.app, app_queues(self.app))

    discard_all = purge

    # -- revoking

    def revoke(
        self,
        task_id: str | Sequence[str],
        destination: Any = None,
        terminate: bool = False,
        signal: Any = "SIGTERM",
        **kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        """Revoke tasks by id: those not started never run; ``terminate`` also stops a
        running one (prefork: its process is signalled; threads/solo: it cannot be
        interrupted, but is never retried or redelivered)."""
        ids = [task_id] if isinstance(task_id, str) else [str(i) for i in task_id or ()]
        ids = list(dict.fromkeys(i for i in ids if i))
        signum = signum_of(signal) if terminate else None
        if ids:
            self._revoke(ids, terminate, signum, destination)

        def answer(node: NodeView) -> dict[str, Any]:
            if terminate:
                running = {t.get("id") for t in node.active}
                hit = [i for i in ids if i in running]
                return {"ok": f"terminate: {', '.join(hit)}" if hit else "terminate: tasks unknown"}
            return {"ok": f"tasks {set(ids)} flagged as revoked"}

        return self._replies(
            answer,
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
            kwargs.get("pattern"),
            kwargs.get("matcher"),
        )

    def terminate(
        self,
        task_id: str | Sequence[str],
        destination: Any = None,
        signal: Any = "SIGTERM",
        **kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        return self.revoke(
            task_id, destination=destination, terminate=True, signal=signal, **kwargs
        )

    def _revoke(
        self, ids: list[str], terminate: bool, signum: int | None, destination: Any
    ) -> None:
        app = self.app
        docket = app.docket
        r = docket.redis
        prefix = self._prefix
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
        asks = [(q, i) for q in queues for i in ids]
        for q, i in asks:
            pipe.hmget(QueueKeys(prefix, q).run(i), "s", "b", "m")
        replies = pipe.execute()[3:]
        found: dict[str, tuple[str, str, bytes | None]] = {}
        entries: list[tuple[str, str, str]] = []
        for (q, i), (state, body, mid) in zip(asks, replies, strict=True):
            if state is not None and i not in found:
                found[i] = (q, _text(state), body)
                if body is None and mid is not None:  # keyed and queued: body in the stream
                    entries.append((i, q, _text(mid)))
        if entries:
            pipe = r.pipeline(transaction=False)
            for _i, q, mid in entries:
                pipe.xrange(QueueKeys(prefix, q).stream, mid, mid)
            for (i, q, _mid), rows in zip(entries, pipe.execute(), strict=True):
                if rows and rows[0][1]:
                    found[i] = (q, found[i][1], rows[0][1].get(b"b"))
        current = store.get_many(ids) if hasattr(store, "get_many") else [store.get(i) for i in ids]

        # 2. what runs now (per the heartbeats) keeps its state to its worker, as in Celery
        running: set[str] = set()
        try:
            for node in live_nodes(app).values():
                running.update(str(t.get("id")) for t in node.active)
        except Exception:  # noqa: BLE001 - a revoke must not fail on inspection
            pass

        # 3. take parked/queued executions out of the engine, mark the states REVOKED
        pipe = Pipeline(r)
        cancel = Script(CANCEL)
        cancelled: list[str] = []
        for i, (q, state, _body) in found.items():
            if i in running and state != "parked":
                continue
            k = QueueKeys(prefix, q)
            pipe.script(cancel, [k.stream, k.due, k.run(i)], [GROUP, i])
            cancelled.append(i)
        outcomes = pipe.execute() if cancelled else []
        removed: list[dict[str, Any]] = []
        for i, outcome in zip(cancelled, outcomes, strict=True):
            q, _state, body = found[i]
            if _text(outcome) in ("parked", "queued") and body is not None:
                removed.append({"id": i, "queue": q, "body": base64.b64encode(body).decode()})
        writes: list[tuple[str, bytes]] = []
        for i, raw in zip(ids, current, strict=True):
            if i in running:
                continue
            if raw is not None and not _revocable_state(app, raw):
                continue
            record = None
            where, _state, body = found.get(i, ("", "", None))
            if body is not None:
                record = message_info(app, body, where, "")
                if record is not None:
                    record["queue"] = where
            writes.append((i, _revoked_meta(app, i, "revoked", record)))
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
                wpipe.publish(key, meta)
            wpipe.execute()

        # 4. tell the workers (and leave the removed ones for a worker to announce)
        pipe = r.pipeline(transaction=False)
        if removed:
            pipe.rpush(revoked_signals_key(prefix), *[json.dumps(x) for x in removed])
            pipe.expire(revoked_signals_key(prefix), int(revoke_expires(app)))
        pipe.publish(
            control_channel(prefix),
            json.dumps(
                {
                    "cmd": "revoke",
                    "args": {
                        "ids": ids,
                        "expires_ms": expires_ms,
                        "terminate": bool(terminate),
                        "signum": signum,
                        "signals": len(removed),
                    },
                    "destination": _destinations(destination),
                    "sent": time.time(),
                }
            ),
        )
        pipe.execute()
        docket.backend.notify()
        log.info("revoked %s%s", ", ".join(ids), " (terminate)" if terminate else "")

    def revoke_by_stamped_headers(self, headers: Any, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("revoke_by_stamped_headers")

    # -- pings and settings

    def ping(
        self, destination: Any = None, timeout: float = 1.0, **kwargs: Any
    ) -> list[dict[str, Any]]:
        return (
            self._replies(
                lambda _n: {"ok": "pong"},
                destination,
                True,
                kwargs.get("limit"),
                kwargs.get("callback"),
                kwargs.get("pattern"),
                kwargs.get("matcher"),
            )
            or []
        )

    def rate_limit(
        self, task_name: str, rate_limit: Any, destination: Any = None, **kwargs: Any
    ) -> Any:
        return self._unsupported("rate_limit")

    def time_limit(
        self,
        task_name: str,
        soft: float | None = None,
        hard: float | None = None,
        destination: Any = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        """Set a task's time limits on the running workers (and children they start)."""
        self._publish(
            "time_limit",
            {
                "task_name": task_name,
                "soft": None if soft is None else float(soft),
                "hard": None if hard is None else float(hard),
            },
            destination,
        )

        def answer(node: NodeView) -> dict[str, Any]:
            if task_name not in node.registered:
                return {"error": "unknown task"}
            return {"ok": "time limits set successfully"}

        return self._replies(
            answer,
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def add_consumer(
        self,
        queue: str,
        exchange: str | None = None,
        exchange_type: str = "direct",
        routing_key: str | None = None,
        options: dict[str, Any] | None = None,
        destination: Any = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        """Make the workers consume ``queue`` too (exchange and routing key are ignored)."""
        self._publish("add_consumer", {"queue": str(queue)}, destination)
        return self._replies(
            lambda _n: {"ok": f"add consumer {queue}"},
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def cancel_consumer(
        self, queue: str, destination: Any = None, **kwargs: Any
    ) -> list[dict[str, Any]] | None:
        """Make the workers stop reading ``queue``; what they hold from it finishes."""
        self._publish("cancel_consumer", {"queue": str(queue)}, destination)
        return self._replies(
            lambda _n: {"ok": f"no longer consuming from {queue}"},
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def _pool_answer(self, verb: str) -> Callable[[NodeView], dict[str, Any]]:
        def answer(node: NodeView) -> dict[str, Any]:
            if node.pool != "prefork":
                return {"error": f"pool_{verb} is not supported by the {node.pool} pool"}
            return {"ok": f"pool will {verb}"}

        return answer

    def pool_grow(
        self, n: int = 1, destination: Any = None, **kwargs: Any
    ) -> list[dict[str, Any]] | None:
        """Start ``n`` more processes in each prefork worker (threads/solo: not supported)."""
        self._publish("pool_grow", {"n": int(n)}, destination)
        return self._replies(
            self._pool_answer("grow"),
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def pool_shrink(
        self, n: int = 1, destination: Any = None, **kwargs: Any
    ) -> list[dict[str, Any]] | None:
        """Stop ``n`` processes of each prefork worker after their current task."""
        self._publish("pool_shrink", {"n": int(n)}, destination)
        return self._replies(
            self._pool_answer("shrink"),
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def shutdown(self, destination: Any = None, **kwargs: Any) -> list[dict[str, Any]] | None:
        """Stop the workers gracefully (running tasks finish, unstarted ones go back)."""
        answers = self._replies(
            lambda _n: {"ok": "shutting down"},
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )
        self._publish("shutdown", {}, destination)
        return answers

    def heartbeat(self, destination: Any = None, **kwargs: Any) -> list[dict[str, Any]] | None:
        """Make the workers write their heartbeat (what inspect reads) now."""
        self._publish("heartbeat", {}, destination)
        return self._replies(
            lambda _n: {"ok": "heartbeat sent"},
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def _unsupported(self, command: str) -> Any:
        raise NotImplementedError(
            f"control {command} is not supported by celery-docket: {UNSUPPORTED_CONTROL[command]}"
        )

    def autoscale(self, max: int, min: int, destination: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        return self._unsupported("autoscale")

    def pool_restart(self, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("pool_restart")

    def enable_events(self, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("enable_events")

    def disable_events(self, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("disable_events")

    def election(self, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("election")

    # -- generic

    def broadcast(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Any = None,
        connection: Any = None,
        reply: bool = False,
        timeout: float = 1.0,
        limit: int | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        channel: Any = None,
        pattern: str | None = None,
        matcher: str | None = None,
        **extra_kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        """Run ``command`` by name; replies (``reply=True``) come as ``[{node: reply}]``."""
        args = dict(arguments or {}, **extra_kwargs)
        if command in UNSUPPORTED_CONTROL:
            return self._unsupported(command)  # type: ignore[no-any-return]
        if command in UNSUPPORTED_INSPECT:
            return Inspect(app=self.app)._unsupported(command)  # type: ignore[no-any-return]
        if command in INSPECT_COMMANDS:
            insp = Inspect(destination, timeout, None, None, self.app, limit, pattern, matcher)
            by_node = insp._request(command, **args) or {}
            out = [{n: v} for n, v in by_node.items()]
            if callback is not None:
                for one in out:
                    callback(one)
            return out if reply else None
        common: dict[str, Any] = {"reply": reply, "limit": limit, "callback": callback}
        if command == "revoke":
            return self.revoke(
                args.pop("task_id"),
                destination=destination,
                terminate=bool(args.pop("terminate", False)),
                signal=args.pop("signal", None) or "SIGTERM",
                pattern=pattern,
                matcher=matcher,
                **common,
            )
        if command == "terminate":
            return self.revoke(
                args.pop("task_id"),
                destination=destination,
                terminate=True,
                signal=args.pop("signal", None) or "SIGTERM",
                **common,
            )
        if command == "time_limit":
            return self.time_limit(
                args["task_name"], args.get("soft"), args.get("hard"), destination, **common
            )
        if command == "add_consumer":
            return self.add_consumer(args["queue"], destination=destination, **common)
        if command == "cancel_consumer":
            return self.cancel_consumer(args["queue"], destination=destination, **common)
        if command in ("pool_grow", "pool_shrink"):
            method = self.pool_grow if command == "pool_grow" else self.pool_shrink
            return method(int(args.get("n", 1)), destination=destination, **common)
        if command == "shutdown":
            return self.shutdown(destination=destination, **common)
        if command == "heartbeat":
            return self.heartbeat(destination=destination, **common)
        raise NotImplementedError(f"celery-docket has no remote control command {command!r}")


def _revocable_state(app: Any, raw: bytes) -> bool:
    """Celery marks a task REVOKED only while it waits (PENDING, RECEIVED, RETRY, REJECTED)."""
    try:
        meta = json.loads(raw)
        status = meta.get("status")
    except (ValueError, AttributeError):
        return True
    return status in (states.PENDING, states.RECEIVED, states.RETRY, states.REJECTED, None)


# -- queue state -------------------------------------------------------------------------

_PURGE = """
-- KEYS: stream, due. ARGV: group, run prefix, start ('' : after the group's last delivery),
-- limit. Deletes entries never delivered to a worker (keeping perpetual ones), then, on the
-- first call, parked non-perpetual executions. Returns {removed, last id seen, seen, parked}.
local stream, due = KEYS[1], KEYS[2]
local group, prefix, start, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if start == '' then
  start = '-'
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
  if ok then
    for _, g in ipairs(groups) do
      local name, last
      for i = 1, #g, 2 do
        if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
      end
      if name == group and last and last ~= '0-0' then start = '(' .. last end
    end
  end
end
local entries = redis.call('XRANGE', stream, start, '+', 'COUNT', limit)
local removed, last, gone = 0, '', {}
for _, e in ipairs(entries) do
  last = e[1]
  local f = e[2]
  local id, keyed, perpetual = nil, false, false
  for i = 1, #f, 2 do
    if f[i] == 'i' then id = f[i + 1]
    elseif f[i] == 'k' and f[i + 1] == '1' then keyed = true
    elseif f[i] == 'p' and f[i + 1] == '1' then perpetual = true end
  end
  if not perpetual then
    gone[#gone + 1] = e[1]
    if keyed and id and redis.call('HGET', prefix .. id, 'm') == e[1] then
      redis.call('DEL', prefix .. id)
    end
  end
end
for i = 1, #gone, 500 do
  redis.call('XDEL', stream, unpack(gone, i, math.min(i + 499, #gone)))
end
removed = #gone
local parked = 0
if ARGV[3] == '' then
  local ids = redis.call('ZRANGE', due, 0, -1)
  for _, id in ipairs(ids) do
    if redis.call('HGET', prefix .. id, 'p') ~= '1' then
      redis.call('ZREM', due, id)
      redis.call('DEL', prefix .. id)
      parked = parked + 1
    end
  end
end
return {removed, last, #entries, parked}
"""
_purge_script = Script(_PURGE)


def purge_queues(app: Any, queues: Iterable[str], chunk: int = 5000) -> int:
    """Delete the waiting tasks of ``queues``: ready ones nobody was handed yet and
    scheduled (parked) ones. Delivered tasks and beat entries stay. Returns the count."""
    docket = app.docket
    total = 0
    for q in queues:
        k = docket.keys(q)
        start = ""
        while True:
            removed, last, seen, parked = _purge_script(
                docket.redis, [k.stream, k.due], [GROUP, k.run_prefix, start, chunk]
            )
            total += int(removed) + int(parked)
            if int(seen) < chunk or not last:
                break
            start = "(" + _text(last)
    docket.backend.notify()
    return total


_PARKED = """
-- KEYS: due. ARGV: run prefix, limit. The soonest parked executions with their records:
-- id, due ms, body, perpetual flag (4 values each), in one round trip.
local rows = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local r = redis.call('HMGET', ARGV[1] .. rows[i], 'b', 'p')
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = r[1] or false
  out[#out + 1] = r[2] or ''
end
return out
"""
_parked_script = Script(_PARKED)


def parked(app: Any, queue: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """Parked executions of ``queue`` (soonest first): id, eta, body, perpetual."""
    docket = app.docket
    k = docket.keys(queue)
    flat = _parked_script(docket.redis, [k.due], [k.run_prefix, max(1, int(limit))])
    out = []
    for j in range(0, len(flat), 4):
        member, score, body, perpetual = flat[j : j + 4]
        if not body:
            continue
        out.append(
            {
                "id": _text(member),
                "eta": datetime.fromtimestamp(float(score) / 1000.0, timezone.utc).isoformat(),
                "body": bytes(body),
                "perpetual": perpetual == b"1",
            }
        )
    return out


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
    pipe = docket.redis.pipeline(transaction=False)
    for q in names:
        k = docket.keys(q)
        pipe.xlen(k.stream)
        pipe.zcard(k.due)
        pipe.xlen(k.dead)
        pipe.exists(k.stream)
    raw = pipe.execute()
    pending_pipe = docket.redis.pipeline(transaction=False)
    exists = []
    for i, q in enumerate(names):
        exists.append(bool(raw[i * 4 + 3]))
        if exists[-1]:
            pending_pipe.xpending(docket.keys(q).stream, GROUP)
    pending_raw = pending_pipe.execute(raise_on_error=False) if any(exists) else []
    pending_iter = iter(pending_raw)
    running: dict[str, int] = {}
    for node in nodes.values():
        for t in node.active:
            routed = str((t.get("delivery_info") or {}).get("routing_key"))
            running[routed] = running.get(routed, 0) + 1
    out_queues: dict[str, Any] = {}
    for i, q in enumerate(names):
        length, due, dead = int(raw[i * 4]), int(raw[i * 4 + 1]), int(raw[i * 4 + 2])
        pending = 0
        if exists[i]:
            summary = next(pending_iter)
            if isinstance(summary, dict):
                pending = int(summary.get("pending") or 0)
        run = min(running.get(q, 0), pending)
        out_queues[q] = {
            "ready": max(0, length - pending),
            "scheduled": due,
            "reserved": max(0, pending - run),
            "running": run,
            "dead": dead,
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


# -- the dead-letter stream --------------------------------------------------------------


@dataclass
class DeadEntry:
    """One dead-lettered message."""

    entry_id: str
    queue: str
    execution_id: str
    function: str
    reason: str
    attempt: int
    keyed: bool
    when: float
    body: bytes
    message_id: str = ""

    @property
    def task_id(self) -> str:
        try:
            from .protocol import TaskMessage

            return TaskMessage.decode(self.body).id
        except Exception:  # noqa: BLE001 - native or malformed: the execution id
            return self.execution_id

    def as_dict(self, app: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "entry": self.entry_id,
            "queue": self.queue,
            "id": self.task_id,
            "execution_id": self.execution_id,
            "name": self.function,
            "reason": self.reason,
            "attempt": self.attempt,
            "dead_at": datetime.fromtimestamp(self.when, timezone.utc).isoformat()
            if self.when
            else None,
        }
        if app is not None:
            info = message_info(app, self.body, self.queue, "")
            if info is not None:
                out["args"], out["kwargs"] = info["args"], info["kwargs"]
        return out


def dead_entries(
    app: Any,
    queues: Sequence[str] | None = None,
    task_id: str | None = None,
    limit: int | None = None,
) -> list[DeadEntry]:
    """Dead letters of ``queues`` (default: every known queue), newest first; ``task_id``
    selects by task id, execution id or dead entry id."""
    docket = app.docket
    out: list[DeadEntry] = []
    for q in queues or known_queues(app):
        rows = docket.redis.xrevrange(
            docket.keys(q).dead, "+", "-", count=None if task_id else limit
        )
        for entry_id, fields in rows:
            f = {_text(k): v for k, v in fields.items()}
            d = DeadEntry(
                entry_id=_text(entry_id),
                queue=_lossy(f.get("q", q.encode())),
                execution_id=_lossy(f.get("i", b"")),
                function=_lossy(f.get("n", b"?")),
                reason=_lossy(f.get("r", b"")),
                attempt=_int(f.get("a"), 1),
                keyed=f.get("k") == b"1",
                when=_int(f.get("t"), 0) / 1000.0,
                body=bytes(f.get("b", b"")),
                message_id=_lossy(f.get("m", b"")),
            )
            if task_id and task_id not in (d.entry_id, d.execution_id, d.task_id):
                continue
            out.append(d)
    out.sort(key=lambda d: tuple(int(p) for p in d.entry_id.split("-")), reverse=True)
    return out[:limit] if limit else out


def _lossy(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _int(value: Any, default: int) -> int:
    """A number field of a dead letter; a malformed one must not hide the others."""
    try:
        return int(_lossy(value)) if value is not None else default
    except ValueError:
        return default


def replay_dead(
    app: Any, entries: Iterable[DeadEntry]
) -> tuple[list[DeadEntry], list[tuple[DeadEntry, str]]]:
    """Re-add each dead letter's original message to its queue and drop the dead letter
    (the result stored when it died is forgotten, so waiting on it waits for the new run).

    Returns (replayed, [(skipped, why)]): a malformed entry cannot be replayed, and a keyed
    one whose key is live again is left alone.
    """
    from .engine import Call

    docket = app.docket
    replayed: list[DeadEntry] = []
    skipped: list[tuple[DeadEntry, str]] = []
    for d in entries:
        if d.function == "?" or not d.execution_id or d.execution_id == "?":
            skipped.append((d, "malformed entry: nothing to replay"))
            continue
        call = Call(
            d.function,
            d.body,
            queue=d.queue,
            key=d.execution_id if d.keyed else None,
            execution_id=d.execution_id,
            attempt=max(1, d.attempt),
        )
        try:  # the outcome stored when it was dead-lettered (e.g. FAILURE) is obsolete
            app.results.forget(d.task_id)
        except Exception:  # noqa: BLE001 - replay anyway
            log.warning("could not reset the result of %s", d.task_id)
        execution = docket.enqueue(call)
        if not execution.added:
            skipped.append((d, f"a live execution {d.execution_id} already exists"))
            continue
        docket.redis.xdel(docket.keys(d.queue).dead, d.entry_id)
        replayed.append(d)
    return replayed, skipped


def purge_dead(app: Any, entries: Iterable[DeadEntry]) -> int:
    docket = app.docket
    pipe = docket.redis.pipeline(transaction=False)
    count = 0
    for d in entries:
        pipe.xdel(docket.keys(d.queue).dead, d.entry_id)
        count += 1
    if count:
        pipe.execute()
    return count


# -- report ------------------------------------------------------------------------------

_SECRET = re.compile(r"(?i)(password|secret|token|key|credential|pass|auth)")


def _mask(name: str, value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    if _SECRET.search(name) and value and name not in ("docket_key_prefix",):
        return "********"
    return value


def report_text(app: Any) -> str:
    """What to paste into a bug report: versions, platform, transport and changed settings."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "-"

    server = "-"
    try:
        info = app.docket.redis.info("server")
        server = str(info.get("redis_version", "-"))
    except Exception:  # noqa: BLE001 - a report must not fail
        pass
    conf = app.conf
    results = conf.get("result_backend") or f"{app.broker_url} (the broker)"
    lines = [
        "",
        f"software -> celery-docket:{__version__} py:{platform.python_version()}"
        f" redis-py:{v('redis')} kombu:{v('kombu')} redis-server:{server}",
        f"platform -> system:{platform.system()} arch:{platform.machine()}"
        f" kernel:{platform.release()} imp:{platform.python_implementation()}",
        f"app      -> {app.main or '__main__'} prefix:{app.docket.prefix} pid:{os.getpid()}",
        f"settings -> transport:{broker_info(app)['transport']} results:{_mask('result_backend', str(results))}",
        "",
    ]
    changes = getattr(conf, "_changes", {})
    for name in sorted(changes):
        lines.append(f"{name}: {_mask(name, changes[name])!r}")
    if "broker_url" not in changes:
        lines.append(f"broker_url: {_mask('broker_url', app.broker_url)!r}")
    lines.append(f"python: {sys.executable}")
    return "\n".join(lines) + "\n"
