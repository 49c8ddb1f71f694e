"""Celery's kombu Redis messages to our task messages and back.

A kombu message is a JSON object: ``headers``, ``properties`` (with ``body_encoding``,
``delivery_tag``, ``delivery_info``, ``priority``), ``content-type``, ``content-encoding`` and
``body`` (base64 when ``body_encoding`` says so). Protocol 2 carries the task's name and id in
the headers and ``(args, kwargs, embed)`` in the body, which is what our own messages are, so
such a message keeps its body byte for byte (links, chains and chords in ``embed`` included)
and is never deserialized here. Protocol 1 keeps everything in the body (a mapping with
``task``, ``id``, ``args``, ``kwargs``, ``eta``...): that body is read with the app's accepted
serializers and rebuilt as protocol 2.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kombu.serialization import loads, prepare_accept_content, registry

from .. import protocol
from ..protocol import TaskMessage

#: content types any worker reads whatever accept_content says (as kombu does)
_TRUSTED_CONTENT = frozenset({"application/data", "application/text"})

#: kombu-only properties that have no meaning once the message is ours
_TRANSPORT_PROPERTIES = ("body_encoding", "delivery_tag", "delivery_mode")


class NotATask(ValueError):
    """The list entry is not a Celery task message (left where it is)."""


@dataclass
class Incoming:
    """One Celery message, ready to be added to our stream."""

    message: TaskMessage
    eta: datetime | None
    retries: int
    priority: int | None
    protocol: int

    @property
    def task_id(self) -> str:
        return self.message.id

    @property
    def name(self) -> str:
        return self.message.task


def _eta(value: Any) -> datetime | None:
    if not value:
        return None
    eta = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return eta if eta.tzinfo else eta.replace(tzinfo=timezone.utc)


def accepted(accept: Any) -> set[str]:
    """Content types for an accept list of names or types (None: JSON only)."""
    names = list(accept or ("json",))
    return set(prepare_accept_content(names))


def _serializer_of(content_type: str) -> str:
    for name, ctype in registry.name_to_type.items():
        if ctype == content_type:
            return str(name)
    return "json"


def parse(raw: bytes | str) -> dict[str, Any]:
    """The JSON object kombu stored; raises NotATask for anything else."""
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise NotATask(f"not JSON: {exc}") from exc
    if not isinstance(payload, dict) or "body" not in payload:
        raise NotATask("not a kombu message (no body)")
    return payload


def from_kombu(payload: dict[str, Any], accept: Any, queue: str) -> Incoming:
    """Our task message for a kombu message; raises NotATask or kombu's ContentDisallowed.

    ``accept`` is the app's ``accept_content``: a protocol-2 message of another content type
    is refused here (so it stays in Celery's list) instead of being dead-lettered later.
    """
    headers = dict(payload.get("headers") or {})
    props = dict(payload.get("properties") or {})
    ctype = str(payload.get("content-type") or "application/json")
    cenc = str(payload.get("content-encoding") or "utf-8")
    body = payload["body"]
    if props.get("body_encoding") == "base64":
        body = base64.b64decode(body)
    elif isinstance(body, str):
        body = body.encode(cenc if cenc not in ("binary",) else "latin-1")
    elif not isinstance(body, bytes):
        raise NotATask("body is neither text nor base64")
    if ctype not in accepted(accept) and ctype not in _TRUSTED_CONTENT:
        from kombu.exceptions import ContentDisallowed

        raise ContentDisallowed(f"content type {ctype} is not in the app's accept_content")
    priority = props.get("priority")
    if isinstance(headers.get("task"), str) and isinstance(headers.get("id"), str):
        for key in _TRANSPORT_PROPERTIES:
            props.pop(key, None)
        props.setdefault("delivery_info", {"exchange": "", "routing_key": queue})
        msg = TaskMessage(headers, body, ctype, cenc, props)
        return Incoming(
            msg, _eta(headers.get("eta")), int(headers.get("retries") or 0), priority, 2
        )
    return _from_protocol1(body, ctype, cenc, accept, props, queue, headers)


def _from_protocol1(
    body: bytes,
    ctype: str,
    cenc: str,
    accept: Any,
    props: dict[str, Any],
    queue: str,
    headers: dict[str, Any],
) -> Incoming:
    decoded = loads(body, ctype, cenc, accept=accepted(accept))
    if not isinstance(decoded, dict) or not decoded.get("task") or not decoded.get("id"):
        raise NotATask("neither a protocol-2 header nor a protocol-1 body")
    limits = decoded.get("timelimit") or (None, None)
    msg = protocol.build_task_message(
        str(decoded["task"]),
        list(decoded.get("args") or ()),
        dict(decoded.get("kwargs") or {}),
        task_id=str(decoded["id"]),
        eta=decoded.get("eta"),
        expires=decoded.get("expires"),
        group_id=decoded.get("taskset") or decoded.get("group"),
        retries=int(decoded.get("retries") or 0),
        chord=decoded.get("chord"),
        callbacks=decoded.get("callbacks"),
        errbacks=decoded.get("errbacks"),
        time_limit=limits[0] if len(limits) > 0 else None,
        soft_time_limit=limits[1] if len(limits) > 1 else None,
        reply_to=props.get("reply_to"),
        headers={k: v for k, v in headers.items() if k not in ("task", "id")} or None,
        priority=props.get("priority"),
        queue=queue,
        serializer=_serializer_of(ctype),
    )
    return Incoming(
        msg,
        _eta(msg.headers.get("eta")),
        int(msg.headers.get("retries") or 0),
        props.get("priority"),
        1,
    )


def to_kombu(msg: TaskMessage, queue: str, exchange: str = "") -> dict[str, Any]:
    """A protocol-2 kombu message for one of ours, as Celery's producer would list it."""
    props = {k: v for k, v in msg.properties.items() if k not in _TRANSPORT_PROPERTIES}
    props.setdefault("correlation_id", msg.id)
    props.setdefault("reply_to", "")
    props["delivery_mode"] = 2
    props["delivery_info"] = {"exchange": exchange, "routing_key": queue}
    props.setdefault("priority", 0)
    if props.get("priority") is None:
        props["priority"] = 0
    props["body_encoding"] = "base64"
    props["delivery_tag"] = str(uuid.uuid4())
    return {
        "body": base64.b64encode(msg.body).decode("ascii"),
        "content-encoding": msg.content_encoding,
        "content-type": msg.content_type,
        "headers": msg.headers,
        "properties": props,
    }


def task_name_of(payload: dict[str, Any], accept: Any) -> str:
    """The task name for counting (protocol 1 bodies are read only if JSON or accepted)."""
    headers = payload.get("headers") or {}
    if isinstance(headers.get("task"), str):
        return str(headers["task"])
    try:
        incoming = from_kombu(payload, accept, "")
    except Exception:  # noqa: BLE001 - an unreadable body still gets a name in the report
        return "<unreadable>"
    return incoming.name
