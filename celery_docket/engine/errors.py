"""The engine's typed errors: each names what went wrong so callers never get a bare redis error."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every engine error."""


class PayloadTooLarge(EngineError):
    """A call's encoded payload exceeds the configured limit; it was not enqueued."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"payload of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class BrokerUnavailable(EngineError):
    """Redis could not be reached or the connection was lost. The message says which:
    "nothing was enqueued" (the connect failed) or "may not have been enqueued" (lost after
    the write, so the call may have been enqueued)."""


class BrokerFull(BrokerUnavailable):
    """Redis is out of memory (``maxmemory`` with ``noeviction``); nothing was enqueued."""


class NotReplicated(BrokerUnavailable):
    """Durable enqueue: the master took the call but fewer replicas than asked confirmed it
    in time (``WAIT``), so a failover now could lose it. It may run; re-sending it under the
    same key is safe, re-sending it without one may run it twice."""


class Undeliverable(EngineError):
    """A delivered message must not run (unknown task, bad payload, bad arguments).

    Raised by a handler; the worker dead-letters the message with this reason and goes on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ContentRefused(Undeliverable):
    """A payload's content type is not among the accepted ones (e.g. pickle not opted in)."""


class ResultTimeout(EngineError):
    """Waiting for an execution's result took longer than the caller allowed."""
