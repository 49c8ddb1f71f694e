"""Celery's wire formats as pure functions: task messages (protocol 2) and result meta.

Task messages carry the same headers, body ``(args, kwargs, embed)`` and properties a Celery
client publishes, serialized through kombu's registry, so content types, the ``accept``
whitelist and JSON's typed values (datetime, UUID, Decimal...) behave exactly as in Celery.
A whole message travels as one opaque value (:meth:`TaskMessage.encode`): a compact JSON
envelope whose ``body`` is the serialized body as text, or base64 when it is binary.
Version 2 of the envelope (``envelope.py``) leaves Celery's defaults out and decoding puts
them back; version 1 (every header and property) is still read and, for messages of
another shape, written.

Result meta is byte-for-byte what Celery's Redis backend stores at ``celery-task-meta-<id>``,
so results can be read by either side.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import json
import lzma
import numbers
import os
import socket
import uuid
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from kombu.compression import compress, decompress
from kombu.exceptions import ContentDisallowed, DecodeError
from kombu.serialization import dumps, loads, prepare_accept_content
from kombu.utils import json as kjson

from . import envelope
from .exception_meta import (
    UnpickleableExceptionWrapper,
    exception_to_meta,
    meta_to_exception,
    pickleable_exception,
)
from .exceptions import InvalidTaskError, PayloadTooLarge
from .keys import TASK_META_PREFIX, result_key
from .utils.saferepr import saferepr

_DECOMPRESSORS: dict[str, Any] = {
    "application/x-gzip": zlib.decompressobj,
    "application/x-bz2": bz2.BZ2Decompressor,
    "application/x-lzma": lzma.LZMADecompressor,
}


def decompress_limited(body: bytes, method: str, limit: int | None) -> bytes:
    """Decompress ``body``, streaming, never inflating more than ``limit`` bytes: a small
    compressed message must not take a worker's memory (PayloadTooLarge above it).
    Methods without a streaming decompressor here are inflated whole, then checked."""
    if limit is None:
        return bytes(decompress(body, method))
    factory = _DECOMPRESSORS.get(method)
    if factory is None:
        data = bytes(decompress(body, method))
        if len(data) > limit:
            raise PayloadTooLarge(len(data), limit)
        return data
    d = factory()
    out = d.decompress(body, limit + 1)
    if len(out) > limit:
        raise PayloadTooLarge(len(out), limit)
    if method == "application/x-gzip" and not d.eof and d.unconsumed_tail:
        raise PayloadTooLarge(limit + 1, limit)
    return bytes(out)


__all__ = (
    "EXCEPTION_STATES",
    "READY_STATES",
    "TASK_META_PREFIX",
    "TaskMessage",
    "UnpickleableExceptionWrapper",
    "build_task_message",
    "decode_body",
    "decode_result_meta",
    "encode_result_meta",
    "exception_to_meta",
    "meta_to_exception",
    "result_key",
    "saferepr",
)

ENVELOPE_VERSION = envelope.VERSION
"""What :meth:`TaskMessage.encode` writes; :meth:`TaskMessage.decode` reads 1 and 2."""
DEFAULT_ACCEPT = ("json",)
READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
EXCEPTION_STATES = frozenset({"RETRY", "FAILURE", "REVOKED"})
#: Marker Celery >= 5.7 puts before a compressed stored result: MAGIC + type + NUL + body.
RESULT_COMPRESSED_MAGIC = b"\x00celery-compressed\x00"
_INT_MIN = -2147483648
_TRUSTED_CONTENT = frozenset({"application/data", "application/text"})
_EMBED_KEYS = ("callbacks", "errbacks", "chain", "chord")
_UTF8 = frozenset({"utf-8", "utf8", "UTF-8"})


# -- task messages -------------------------------------------------------------------------


@dataclass
class TaskMessage:
    """One task message: Celery's headers/properties plus the serialized body."""

    headers: dict[str, Any]
    body: bytes
    content_type: str = "application/json"
    content_encoding: str = "utf-8"
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.headers["id"])

    @property
    def task(self) -> str:
        return str(self.headers["task"])

    def encode(self, version: int = ENVELOPE_VERSION) -> bytes:
        """The whole message as one bytes value (see :meth:`decode`).

        ``version=1`` writes the whole envelope, for consumers that predate version 2.
        """
        body_encoding, body = "base64", None
        if self.content_encoding.lower() in ("utf-8", "utf8") and not self.headers.get(
            "compression"
        ):
            try:
                body, body_encoding = self.body.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                pass
        if body is None:
            body = base64.b64encode(self.body).decode("ascii")
        lean = None
        if version != 1:
            lean = envelope.pack(
                self.headers,
                self.properties,
                self.content_type,
                self.content_encoding,
                body_encoding,
                body,
            )
        env = lean or {
            "v": 1,
            "headers": self.headers,
            "properties": self.properties,
            "content-type": self.content_type,
            "content-encoding": self.content_encoding,
            "body-encoding": body_encoding,
            "body": body,
        }
        text: str = _compact_json(env)
        return text.encode("utf-8")

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview | str) -> TaskMessage:
        """Parse :meth:`encode` output; anything else raises ``InvalidTaskError``."""
        try:
            if isinstance(data, memoryview | bytearray):
                data = bytes(data)
            if isinstance(data, bytes):
                data = data.decode("utf-8")
            if not isinstance(data, str):
                raise TypeError(f"expected bytes, got {type(data).__name__}")
            env = json_loads(data)
        except Exception as exc:  # bad UTF-8/JSON, bad typed values, absurd nesting...
            raise InvalidTaskError(f"task message is not a valid envelope: {exc}") from exc
        return cls._from_envelope(env)

    @classmethod
    def _from_envelope(cls, env: Any) -> TaskMessage:
        def bad(why: str) -> InvalidTaskError:
            return InvalidTaskError(f"invalid task message: {why}")

        if not isinstance(env, dict):
            raise bad("envelope is not an object")
        version = env.get("v")
        headers: Any
        props: Any
        if version == 2:
            headers, props, ctype, cenc, benc, body = envelope.unpack(env, bad)
        elif version == 1:
            headers, props = env.get("headers"), env.get("properties", {})
            ctype, cenc = env.get("content-type"), env.get("content-encoding")
            body, benc = env.get("body"), env.get("body-encoding")
        else:
            raise bad(f"unsupported envelope version {version!r}")
        if not isinstance(headers, dict) or not isinstance(props, dict):
            raise bad("headers and properties must be objects")
        for key in ("id", "task"):
            if not isinstance(headers.get(key), str) or not headers[key]:
                raise bad(f"header {key!r} is missing or not a string")
        if not isinstance(ctype, str) or not isinstance(cenc, str) or not isinstance(body, str):
            raise bad("content-type, content-encoding and body must be strings")
        if benc not in ("utf-8", "base64"):
            raise bad(f"unknown body-encoding {benc!r}")
        try:
            if benc == "utf-8":
                raw = body.encode("utf-8")
            else:
                raw = base64.b64decode(body.encode("ascii"), validate=True)
        except (UnicodeError, binascii.Error) as exc:
            raise bad(f"body is not valid {benc}: {exc}") from exc
        return cls(headers, raw, ctype, cenc, props)


def _origin() -> str:
    """Celery's name for a non-worker publisher: ``gen<pid>@<hostname>``."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


def _seconds_from_now(seconds: float, what: str, now: datetime | None) -> datetime:
    if seconds < _INT_MIN:
        raise ValueError(f"{what} is out of range: {seconds!r}")
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now + timedelta(seconds=seconds)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def build_task_message(
    name: str,
    args: Iterable[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    task_id: str | None = None,
    countdown: float | None = None,
    eta: datetime | str | None = None,
    expires: float | datetime | str | None = None,
    group_id: str | None = None,
    group_index: int | None = None,
    retries: int = 0,
    chord: Any = None,
    callbacks: list[Any] | None = None,
    errbacks: list[Any] | None = None,
    chain: list[Any] | None = None,
    reply_to: str | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    root_id: str | None = None,
    parent_id: str | None = None,
    shadow: str | None = None,
    origin: str | None = None,
    ignore_result: bool | None = False,
    argsrepr: str | None = None,
    kwargsrepr: str | None = None,
    repr_maxlevels: int = 3,
    replaced_task_nesting: int = 0,
    stamped_headers: list[str] | None = None,
    stamps: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
    priority: int | None = None,
    queue: str | None = None,
    exchange: str = "",
    serializer: str = "json",
    compression: str | None = None,
    now: datetime | None = None,
    max_body_bytes: int | None = None,
) -> TaskMessage:
    """Build a protocol-2 task message as ``Celery.send_task`` would publish it.

    ``countdown`` and numeric ``expires`` are seconds from ``now`` (UTC). ``timelimit`` is
    ``[time_limit, soft_time_limit]``, the order Celery's worker reads. User ``headers``
    override the built ones, as in Celery.
    """
    args = () if args is None else args
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, list | tuple):
        raise TypeError("task args must be a list or tuple")
    if not isinstance(kwargs, Mapping):
        raise TypeError("task keyword arguments must be a mapping")
    task_id = task_id or str(uuid.uuid4())
    if countdown:
        eta = _seconds_from_now(countdown, "countdown", now)
    if isinstance(expires, numbers.Real):
        expires = _seconds_from_now(float(expires), "expires", now)
    if argsrepr is None:
        argsrepr = saferepr(args, maxlevels=repr_maxlevels)
    if kwargsrepr is None:
        kwargsrepr = saferepr(kwargs, maxlevels=repr_maxlevels)
    message_headers: dict[str, Any] = {
        "lang": "py",
        "task": name,
        "id": task_id,
        "shadow": shadow,
        "eta": _iso(eta) or None,
        "expires": _iso(expires) or None,
        "group": group_id,
        "group_index": group_index,
        "retries": retries,
        "timelimit": [time_limit, soft_time_limit],
        "root_id": root_id or task_id,
        "parent_id": parent_id,
        "argsrepr": argsrepr,
        "kwargsrepr": kwargsrepr,
        "origin": origin or _origin(),
        "ignore_result": ignore_result,
        "replaced_task_nesting": replaced_task_nesting,
        "stamped_headers": stamped_headers,
        "stamps": dict(stamps or {}),
    }
    if headers:
        message_headers.update(headers)
    embed = {"callbacks": callbacks, "errbacks": errbacks, "chain": chain, "chord": chord}
    if serializer == "json":
        content_type, content_encoding = "application/json", "utf-8"
        payload: Any = _json((args, dict(kwargs), embed))
    else:
        content_type, content_encoding, payload = dumps((args, dict(kwargs), embed), serializer)
    body = payload.encode(content_encoding) if isinstance(payload, str) else bytes(payload)
    if compression:
        if max_body_bytes is not None and len(body) > max_body_bytes:
            # the limit is on what a worker must inflate, not on the compressed bytes
            raise PayloadTooLarge(len(body), max_body_bytes)
        body, message_headers["compression"] = compress(body, compression)
    message_properties = {
        **(properties or {}),
        "correlation_id": task_id,
        "reply_to": reply_to or "",
        "priority": priority,
        "delivery_info": {"exchange": exchange, "routing_key": queue},
    }
    return TaskMessage(message_headers, body, content_type, content_encoding, message_properties)


#: the headers every message of ours carries; the others are the sender's own
PROTOCOL_HEADERS = frozenset(
    {
        "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries",
        "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin",
        "ignore_result", "replaced_task_nesting", "stamped_headers", "stamps", "compression",
    }
)  # fmt: skip

#: publish options that travel as message properties (kombu's ``app_id``, ``user_id``)
PUBLISH_PROPERTIES = ("app_id", "user_id")


_json = kjson.JSONEncoder().encode
"""kombu's JSON serializer (what ``dumps(value, "json")`` writes, byte for byte) with one
encoder kept for the process instead of one built per call."""
_compact_json = kjson.JSONEncoder(separators=(",", ":")).encode


def json_loads(text: str) -> Any:
    """kombu's JSON decoding, without its per-object hook when nothing needs it.

    The hook only rewrites objects tagged ``{"__type__": ..., "__value__": ...}``; text
    without that word decodes to the same values with the plain C decoder, which is several
    times faster on the hot path (every message is decoded twice: envelope and body).
    """
    return kjson.loads(text) if "__type__" in text else json.loads(text)


def custom_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """The headers a sender added on top of the protocol's (kept on retries)."""
    return {k: v for k, v in (headers or {}).items() if k not in PROTOCOL_HEADERS}


def _accepted(accept: Iterable[str] | None) -> frozenset[str]:
    """Content types for an accept list of names or types (``None`` means JSON only)."""
    return _accepted_types(tuple(DEFAULT_ACCEPT if accept is None else accept))


@lru_cache(maxsize=64)
def _accepted_types(accept: tuple[str, ...]) -> frozenset[str]:
    return frozenset(prepare_accept_content(list(accept)))


def decode_body(
    msg: TaskMessage, accept: Iterable[str] | None = None, max_bytes: int | None = None
) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Deserialize ``(args, kwargs, embed)``; refuses content types not in ``accept``, and
    a compressed body that inflates past ``max_bytes`` (PayloadTooLarge).

    The content type is checked before any byte is decompressed or deserialized, so a
    pickle body is never loaded unless ``accept`` allows it.
    """
    allowed = _accepted(accept)
    if msg.content_type not in allowed and msg.content_type not in _TRUSTED_CONTENT:
        raise ContentDisallowed(
            f"Refusing to deserialize untrusted content of type {msg.content_type}"
        )
    body = msg.body
    if msg.headers.get("compression"):
        try:
            body = decompress_limited(body, msg.headers["compression"], max_bytes)
        except PayloadTooLarge:
            raise
        except Exception as exc:  # unknown method, or corrupt data (zlib.error etc.)
            raise InvalidTaskError(f"cannot decompress task body: {exc}") from exc
    try:
        if msg.content_type == "application/json" and msg.content_encoding in _UTF8:
            payload = json_loads(body.decode("utf-8"))  # kombu's JSON decoder, hook when needed
        else:
            payload = loads(body, msg.content_type, msg.content_encoding, accept=allowed)
    except (DecodeError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError too
        raise InvalidTaskError(f"cannot decode task body: {exc}") from exc
    if not isinstance(payload, list | tuple) or len(payload) != 3:
        raise InvalidTaskError("task body must be a 3-item list: (args, kwargs, embed)")
    args, kwargs, embed = payload
    if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
        raise InvalidTaskError("task body args must be a list and kwargs a mapping")
    if embed is None:
        embed = {}
    if not isinstance(embed, dict):
        raise InvalidTaskError("task body embed must be a mapping")
    embed = dict(embed)
    for key in _EMBED_KEYS:
        embed.setdefault(key, None)
    return list(args), kwargs, embed


# -- result meta ---------------------------------------------------------------------------


def _is_result_object(value: Any) -> bool:
    """AsyncResult/GroupResult (ours or Celery's) are stored as id tuples; a Decimal, which
    also has ``as_tuple``, is a value."""
    module = type(value).__module__
    return callable(getattr(value, "as_tuple", None)) and module in (
        "celery_docket.result",
        "celery.result",
    )


@lru_cache(maxsize=32)
def _content_type_of(serializer: str) -> tuple[str, str]:
    content_type, content_encoding, _ = dumps(None, serializer)
    return content_type, content_encoding


def encode_result_meta(
    task_id: str,
    status: str,
    result: Any,
    traceback: str | None = None,
    children: list[Any] | None = None,
    date_done: datetime | str | None = None,
    name: str | None = None,
    args: Any = None,
    kwargs: Any = None,
    worker: str | None = None,
    retries: int | None = None,
    queue: str | None = None,
    extended: bool = False,
    serializer: str = "json",
    *,
    group_id: str | None = None,
    parent_id: str | None = None,
    compression: str | None = None,
) -> bytes:
    """Serialize result meta exactly as Celery's Redis backend stores it.

    ``date_done`` defaults to now (UTC) for ready states and is always ``None`` otherwise.
    ``group_id``/``parent_id`` are included only when set, as Celery does.
    """
    if status in EXCEPTION_STATES and isinstance(result, BaseException):
        result = (
            pickleable_exception(result) if serializer == "pickle" else exception_to_meta(result)
        )
    elif serializer != "pickle" and _is_result_object(result):
        result = result.as_tuple()  # a result object is stored as its id tuple
    if status not in READY_STATES:
        date_done = None  # Celery records a completion time only for ready states
    elif date_done is None:
        date_done = datetime.now(timezone.utc)
    meta: dict[str, Any] = {
        "status": status,
        "result": result,
        "traceback": traceback,
        "children": children,
        "date_done": _iso(date_done),
    }
    if group_id:
        meta["group_id"] = group_id
    if parent_id:
        meta["parent_id"] = parent_id
    if extended:
        meta.update(name=name, args=args, kwargs=kwargs, worker=worker)
        meta.update(retries=retries, queue=queue)
    meta["task_id"] = task_id
    if serializer == "json":
        content_encoding, payload = "utf-8", _json(meta)
    else:
        _, content_encoding, payload = dumps(meta, serializer)
    data = payload.encode(content_encoding) if isinstance(payload, str) else bytes(payload)
    if compression:
        body, ctype = compress(data, compression)
        data = RESULT_COMPRESSED_MAGIC + ctype.encode("utf-8") + b"\x00" + body
    return data


def decode_result_meta(
    data: bytes | str, accept: Iterable[str] | None = None, serializer: str = "json"
) -> dict[str, Any]:
    """Parse stored result meta; exception states get their exception rebuilt.

    ``serializer`` is the one the writer used (Celery stores no content type with results).
    """
    if isinstance(data, memoryview | bytearray):
        data = bytes(data)
    if isinstance(data, bytes) and data.startswith(RESULT_COMPRESSED_MAGIC):
        ctype, _, body = data[len(RESULT_COMPRESSED_MAGIC) :].partition(b"\x00")
        data = decompress(body, ctype.decode("utf-8"))
    content_type, content_encoding = _content_type_of(serializer)
    meta = loads(data, content_type, content_encoding, accept=_accepted(accept))
    if not isinstance(meta, dict) or "status" not in meta:
        raise ValueError(f"not a task result meta: {meta!r}"[:200])
    if meta["status"] in EXCEPTION_STATES:
        meta["result"] = meta_to_exception(meta.get("result"))
    return meta
