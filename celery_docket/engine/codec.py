"""Argument encoding for the engine's native API: JSON by default, cloudpickle by opt-in.

A body starts with its content type and a colon. Decoding refuses any type the caller did not
accept, so a crafted pickle in the stream is never unpickled by a JSON-only worker.
"""

from __future__ import annotations

import json
from typing import Any

import cloudpickle

from .errors import ContentRefused

JSON = "json"
PICKLE = "pickle"


def encode(value: Any, content_type: str = JSON) -> bytes:
    if content_type == JSON:
        return b"json:" + json.dumps(value, separators=(",", ":")).encode()
    if content_type == PICKLE:
        pickled: bytes = cloudpickle.dumps(value)
        return b"pickle:" + pickled
    raise ValueError(f"unknown content type {content_type!r}")


def content_type_of(body: bytes) -> str:
    head, sep, _ = body.partition(b":")
    if not sep or len(head) > 16:
        raise ContentRefused("body has no content-type prefix")
    return head.decode("ascii", "replace")


def decode(body: bytes, accept: frozenset[str] = frozenset({JSON})) -> Any:
    """Decode a body whose content type is in ``accept``; raise ContentRefused otherwise."""
    content_type = content_type_of(body)
    if content_type not in accept:
        raise ContentRefused(f"content type {content_type!r} is not accepted ({sorted(accept)})")
    payload = body[len(content_type) + 1 :]
    try:
        if content_type == JSON:
            return json.loads(payload)
        if content_type == PICKLE:
            return cloudpickle.loads(payload)
    except Exception as exc:  # a corrupt payload is the message's fault, not the worker's
        raise ContentRefused(f"cannot decode {content_type} body: {exc}") from exc
    raise ContentRefused(f"unknown content type {content_type!r}")
