"""What travels between producers, the engine and handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .clock import When

DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class Call:
    """One call to enqueue: a function name and an opaque body, with where and when."""

    function: str
    body: bytes
    queue: str = DEFAULT_QUEUE
    when: When = None
    key: str | None = None
    execution_id: str | None = None
    replace: bool = False
    perpetual: bool = False
    attempt: int = 1
    once: str | None = None
    """A token: the call is added at most once per token (kept ``once_ttl_ms``)."""
    once_ttl_ms: int = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Execution:
    """The answer to an add: where the execution stands now."""

    id: str
    queue: str
    state: Literal["queued", "parked", "running"]
    when_ms: int | None = None
    added: bool = True
    """False when a live execution with the same key already existed and nothing was added."""


@dataclass
class Delivery:
    """One message handed to a handler by a worker."""

    queue: str
    message_id: str
    execution_id: str
    function: str
    body: bytes
    attempt: int
    keyed: bool
    generation: str
    perpetual: bool
    delivery_count: int = 1
    fate: str | None = None
    """Set when a supervisor killed the previous runner of this message (e.g. time limit)."""
    received_at: float = 0.0
    worker: str = ""
    scratch: dict[str, object] = field(default_factory=dict)
    """The handler's own cache for this delivery (e.g. the decoded message, so hooks and
    the handler decode it once)."""


Action = Literal["ack", "again", "dead"]


@dataclass(frozen=True)
class ResultWrite:
    """A value stored under ``key`` with a TTL and published on the channel of the same name."""

    key: str
    value: bytes
    ttl_ms: int


@dataclass(frozen=True)
class Outcome:
    """What a handler decided about one delivery, committed atomically with its ack.

    ``ack``: done. ``again``: run the same execution again at ``when_ms`` (None: now) with
    ``body`` and ``attempt`` (retries, perpetual next runs). ``dead``: dead-letter with
    ``reason``. ``result`` is written in the same atomic step.
    """

    action: Action = "ack"
    result: ResultWrite | None = None
    when_ms: int | None = None
    body: bytes | None = None
    attempt: int | None = None
    reason: str = ""

    @classmethod
    def done(cls, result: ResultWrite | None = None) -> Outcome:
        return cls("ack", result)

    @classmethod
    def again(
        cls,
        when_ms: int | None,
        body: bytes | None = None,
        attempt: int | None = None,
        result: ResultWrite | None = None,
    ) -> Outcome:
        return cls("again", result, when_ms, body, attempt)

    @classmethod
    def dead(cls, reason: str, result: ResultWrite | None = None) -> Outcome:
        return cls("dead", result, reason=reason)


def decode_entry(queue: str, message_id: str, fields: dict[bytes, bytes]) -> Delivery:
    """Turn a raw stream entry into a Delivery; raises KeyError/ValueError when malformed."""
    return Delivery(
        queue=queue,
        message_id=message_id,
        execution_id=fields[b"i"].decode(),
        function=fields[b"n"].decode(),
        body=fields.get(b"b", b""),
        attempt=int(fields.get(b"a", b"1")),
        keyed=fields.get(b"k") == b"1",
        generation=fields.get(b"g", b"").decode(),
        perpetual=fields.get(b"p") == b"1",
    )
