"""Send-once scopes: replaying a send (a redelivered task doing it again) adds nothing twice.

Inside ``once_scope(prefix)`` every message published gets the engine's once token
``<prefix>:<n>`` (n counts the sends of the scope), set in the same Lua call that adds the
message. A worker that completes a chord and dies while sending its body leaves no token for
what it did not send: the redelivered header task replays the same sends in the same order,
and only the missing ones are added. ``first_time`` guards bookkeeping done once per scope
(resetting a nested chord's counters) the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_scope: ContextVar[list[Any] | None] = ContextVar("celery_docket_once_scope", default=None)


@contextmanager
def once_scope(prefix: str) -> Iterator[None]:
    token = _scope.set([prefix, 0])
    try:
        yield
    finally:
        _scope.reset(token)


def next_token() -> str | None:
    """The once token of the next send in this scope (None outside a scope)."""
    scope = _scope.get()
    if scope is None:
        return None
    scope[1] += 1
    return f"{scope[0]}:{scope[1] - 1}"


def active() -> bool:
    return _scope.get() is not None


def first_time(client: Any, name: str, ttl_ms: int) -> bool:
    """True outside a scope, or the first time ``name`` is asked for in this scope's run."""
    scope = _scope.get()
    if scope is None:
        return True
    return bool(client.set(f"{scope[0]}:{name}", "1", nx=True, px=ttl_ms))
