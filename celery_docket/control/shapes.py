"""Celery's reply shapes: TASK_INFO of a task message, a queue as kombu describes it, the
broker as ``inspect stats`` shows it.

Inspect, the worker's mailbox and the dead-letter listing all describe tasks to Celery's
tools; building those dictionaries in one place keeps the shapes identical wherever they are
shown. Reading a body never raises: one pathological message must not break a listing.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

from ..envelope import unpack

__all__ = [
    "as_text",
    "broker_info",
    "jsonable",
    "message_info",
    "public_info",
    "queue_as_dict",
]


def as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def jsonable(value: Any, fallback: str | None, limit: int = 4096) -> Any:
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
        args: Any = jsonable(raw_args, argsrepr, limit)
        kwargs: Any = jsonable(raw_kwargs, kwargsrepr, limit)
    else:
        from ..protocol import TaskMessage, decode_body

        try:
            message = TaskMessage.decode(body)
        except Exception:  # noqa: BLE001 - not ours to judge here
            return None
        h = message.headers
        argsrepr, kwargsrepr = h.get("argsrepr"), h.get("kwargsrepr")
        try:
            accept = app.conf.accept_content or ["json"]
            full_args, full_kwargs, _embed = decode_body(message, accept)
            args = jsonable(full_args, argsrepr, limit)
            kwargs = jsonable(full_kwargs, kwargsrepr, limit)
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
        if not isinstance(env, dict):
            return None
        headers: Any
        props: Any
        if env.get("v") == 2:  # the lean envelope: its defaults put back, nothing decoded
            headers, props, ctype, _, benc, text = unpack(env, ValueError)
        else:
            headers, props = env.get("headers"), env.get("properties") or {}
            ctype, benc, text = env.get("content-type"), env.get("body-encoding"), env["body"]
        if ctype != "application/json" or benc != "utf-8":
            return None
        if not isinstance(headers, dict) or headers.get("compression"):
            return None
        if not isinstance(headers.get("id"), str) or not isinstance(headers.get("task"), str):
            return None
        payload = json.loads(text)
        args, kwargs = payload[0], payload[1]
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return None
    return headers, props if isinstance(props, dict) else {}, args, kwargs


def public_info(info: dict[str, Any], safe: bool = False) -> dict[str, Any]:
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
