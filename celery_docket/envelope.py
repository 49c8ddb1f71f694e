"""Envelope version 2: a task message as the stream stores it, Celery's defaults left out.

Version 1 stored every protocol-2 header and property, most of them defaults, under their
long names: about 770 bytes for ``add.delay(1, 1)``, in Redis for as long as the task
waits. Version 2 keeps only what differs from what ``build_task_message`` would write
(short keys, ``root_id``/``correlation_id`` equal to the id left out, the all-null embed of
the body cut off) and :func:`unpack` rebuilds the same headers and properties, in the same
order, so every reader of ``TaskMessage.headers`` and every hand-over to real Celery sees
what version 1 gave it.

Only messages of the shape ``build_task_message`` produces are packed: the protocol
headers first and in their order, then the sender's own; the four known properties
together and in their order.
:func:`pack` returns None for anything else and the caller writes version 1, which holds
any message as it is, so a message of another shape is never rebuilt differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kombu.utils import json as kjson

VERSION = 2


class _Required:
    """Marker: a header with no default (always stored)."""


REQUIRED: Any = _Required()
SAME_AS_ID: Any = object()
"""Marker: the default is the message's task id (``root_id``, ``correlation_id``)."""

#: protocol headers in ``build_task_message``'s order: (name, short key, default)
HEADERS: tuple[tuple[str, str, Any], ...] = (
    ("lang", "l", "py"),
    ("task", "t", REQUIRED),
    ("id", "i", REQUIRED),
    ("shadow", "s", None),
    ("eta", "e", None),
    ("expires", "x", None),
    ("group", "g", None),
    ("group_index", "gi", None),
    ("retries", "r", 0),
    ("timelimit", "tl", [None, None]),
    ("root_id", "ri", SAME_AS_ID),
    ("parent_id", "pi", None),
    ("argsrepr", "a", REQUIRED),
    ("kwargsrepr", "k", "{}"),
    ("origin", "o", REQUIRED),
    ("ignore_result", "ig", False),
    ("replaced_task_nesting", "n", 0),
    ("stamped_headers", "sh", None),
    ("stamps", "st", {}),
)
HEADER_NAMES = tuple(name for name, _, _ in HEADERS)

#: the properties ``build_task_message`` writes last, in its order
PROPERTIES: tuple[tuple[str, str, Any], ...] = (
    ("correlation_id", "ci", SAME_AS_ID),
    ("reply_to", "rt", ""),
    ("priority", "pr", None),
)
PROPERTY_NAMES = (*(name for name, _, _ in PROPERTIES), "delivery_info")
DEFAULT_QUEUE = "celery"
"""A ``delivery_info`` of ``{"exchange": "", "routing_key": DEFAULT_QUEUE}`` is left out."""

# envelope keys of the message itself (never a header's short key)
EXTRA_HEADERS, EXTRA_PROPERTIES, QUEUE, DELIVERY_INFO = "X", "P", "q", "di"
LATER_PROPERTIES = "R"
"""Properties set after the message was built (``redelivered``, a rate limit's slot mark)."""
CONTENT_TYPE, CONTENT_ENCODING, BODY_ENCODING = "ct", "ce", "be"
BODY, BODY_NO_EMBED = "b", "B"
"""``B``: the body without the all-null embed every plain call carries (see EMBED_SUFFIX)."""

_NULL_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
EMBED_SUFFIX: str = kjson.JSONEncoder().encode(([], {}, _NULL_EMBED))[len("[[], {}") :]
"""``, {"callbacks": null, ...}]`` exactly as kombu's JSON serializer writes it."""

KEYS = frozenset(
    {
        "v",
        *(short for _, short, _ in HEADERS),
        *(short for _, short, _ in PROPERTIES),
        EXTRA_HEADERS, EXTRA_PROPERTIES, LATER_PROPERTIES, QUEUE, DELIVERY_INFO,
        CONTENT_TYPE, CONTENT_ENCODING, BODY_ENCODING, BODY, BODY_NO_EMBED,
    }
)  # fmt: skip


_TYPED = "__type__"


def _same(value: Any, default: Any) -> bool:
    """Equal and of the same type: ``0`` is not ``False``, ``(None, None)`` not a list, so
    a value left out always comes back as the very value version 1 would decode."""
    return type(value) is type(default) and bool(value == default)


_SPECIAL_HEADERS = tuple(
    (name, default)
    for name, _, default in HEADERS
    if default is REQUIRED or default is SAME_AS_ID or isinstance(default, list | dict)
)
"""Headers whose default is no plain value: required, the task id, or a fresh list/dict
per message (callers may mutate what they decoded)."""
_PROPERTY_SET = frozenset(PROPERTY_NAMES)
_EMPTY: dict[str, Any] = {}


def pack(
    headers: dict[str, Any],
    properties: dict[str, Any],
    content_type: str,
    content_encoding: str,
    body_encoding: str,
    body: str,
) -> dict[str, Any] | None:
    """The version-2 envelope of a message, or None when only version 1 can hold it."""
    names = list(headers)
    count = len(HEADER_NAMES)
    if tuple(names[:count]) != HEADER_NAMES:
        return None
    if _TYPED in headers or _TYPED in properties:
        return None  # kombu's decoder would read the extra headers' object as a typed value
    task_id, task = headers["id"], headers["task"]
    if not isinstance(task_id, str) or not isinstance(task, str):
        return None
    env: dict[str, Any] = {"v": VERSION}
    for name, short, default in HEADERS:
        value = headers[name]
        if default is SAME_AS_ID:
            default = task_id
        if default is REQUIRED or not _same(value, default):
            env[short] = value
    if len(names) > count:
        env[EXTRA_HEADERS] = {k: headers[k] for k in names[count:]}
    props = list(properties)
    start = props.index("correlation_id") if "correlation_id" in properties else -1
    end = start + len(PROPERTY_NAMES)
    if start < 0 or tuple(props[start:end]) != PROPERTY_NAMES:
        return None
    for name, short, default in PROPERTIES:
        value = properties[name]
        if not _same(value, task_id if default is SAME_AS_ID else default):
            env[short] = value
    info = properties["delivery_info"]
    queue = _queue_of(info)
    if queue is None:
        env[DELIVERY_INFO] = info
    elif queue != DEFAULT_QUEUE:
        env[QUEUE] = queue
    if start:
        env[EXTRA_PROPERTIES] = {k: properties[k] for k in props[:start]}
    if end < len(props):
        env[LATER_PROPERTIES] = {k: properties[k] for k in props[end:]}
    if content_type != "application/json":
        env[CONTENT_TYPE] = content_type
    if content_encoding != "utf-8":
        env[CONTENT_ENCODING] = content_encoding
    if body_encoding != "utf-8":
        env[BODY_ENCODING] = body_encoding
    if body_encoding == "utf-8" and body.endswith(EMBED_SUFFIX):
        env[BODY_NO_EMBED] = body[: -len(EMBED_SUFFIX)]
    else:
        env[BODY] = body
    return env


def _queue_of(info: Any) -> str | None:
    """The routing key of a ``delivery_info`` that is only ``{"exchange": "", ...}``."""
    if type(info) is not dict or list(info) != ["exchange", "routing_key"]:
        return None
    exchange, queue = info["exchange"], info["routing_key"]
    if not _same(exchange, "") or type(queue) is not str:
        return None
    return queue


def unpack(
    env: dict[str, Any], bad: Callable[[str], Exception]
) -> tuple[dict[str, Any], dict[str, Any], Any, Any, Any, Any]:
    """(headers, properties, content type, content encoding, body encoding, body) of a
    version-2 envelope, headers and properties in version 1's order; ``bad`` makes the
    error for a malformed one."""
    if not env.keys() <= KEYS:
        raise bad(f"unknown envelope keys {sorted(env.keys() - KEYS)}")
    task_id = env.get("i")
    if not isinstance(task_id, str):
        raise bad("header 'id' is missing or not a string")
    get = env.get
    # every header at its place, a marker where a default needs more than a plain value
    headers = {name: get(short, default) for name, short, default in HEADERS}
    for name, default in _SPECIAL_HEADERS:
        if headers[name] is default:  # never a decoded value: these are our own objects
            if default is REQUIRED:
                raise bad(f"header {name!r} is missing")
            headers[name] = task_id if default is SAME_AS_ID else default.copy()
    extra = get(EXTRA_HEADERS, _EMPTY)
    extra_props = get(EXTRA_PROPERTIES, _EMPTY)
    later = get(LATER_PROPERTIES, _EMPTY)
    if type(extra) is not dict or type(extra_props) is not dict or type(later) is not dict:
        raise bad("extra headers and properties must be objects")
    if extra and extra.keys() & headers.keys():
        raise bad("extra headers repeat a known one")
    if (extra_props or later) and (
        extra_props.keys() & _PROPERTY_SET or later.keys() & {*PROPERTY_NAMES, *extra_props}
    ):
        raise bad("extra properties repeat a known one")
    if extra:
        headers.update(extra)
    props: dict[str, Any] = dict(extra_props)
    for name, short, default in PROPERTIES:
        props[name] = get(short, task_id if default is SAME_AS_ID else default)
    if DELIVERY_INFO in env:
        props["delivery_info"] = env[DELIVERY_INFO]
    else:
        props["delivery_info"] = {"exchange": "", "routing_key": env.get(QUEUE, DEFAULT_QUEUE)}
    props.update(later)
    if BODY_NO_EMBED in env:
        if BODY in env or env.get(BODY_ENCODING, "utf-8") != "utf-8":
            raise bad("a body without its embed is utf-8 text, and the only body")
        stem = env[BODY_NO_EMBED]
        if not isinstance(stem, str):
            raise bad("body must be a string")
        body: Any = stem + EMBED_SUFFIX
    else:
        body = env.get(BODY)
    return (
        headers,
        props,
        env.get(CONTENT_TYPE, "application/json"),
        env.get(CONTENT_ENCODING, "utf-8"),
        env.get(BODY_ENCODING, "utf-8"),
        body,
    )


__all__ = ["EMBED_SUFFIX", "HEADERS", "PROPERTIES", "VERSION", "pack", "unpack"]
