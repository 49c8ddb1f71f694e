"""Operator actions on the engine's structures: purge, dead letters, cancelling in bulk.

These write where workers read, so they stay in the engine beside the scripts whose record
layout they must respect (a purge must not orphan a keyed execution's record, a replay must
go through the same enqueue as new work). The facade calls them; it never touches a stream,
the due set or an execution record itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .client import Client as Docket
from .keys import GROUP
from .lua import Pipeline, Script
from .messages import Call, Execution
from .scripts import CANCEL, PURGE

_purge_script = Script(PURGE)
_cancel_script = Script(CANCEL)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def purge(docket: Docket, queues: Iterable[str], chunk: int = 5000) -> int:
    """Delete the waiting work of ``queues``: ready entries nobody was handed yet and parked
    executions. Delivered work and perpetual executions stay. Returns how many went.
    A sharded queue's name purges every shard."""
    total = 0
    for q in (shard for name in queues for shard in docket.shard_queues(name)):
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


def cancel_many(docket: Docket, executions: Sequence[tuple[str, str]]) -> list[str]:
    """Cancel each ``(queue, execution id)`` in one round trip; returns what each was
    (parked, queued, running or missing), as :meth:`Docket.cancel` does for one."""
    if not executions:
        return []
    pipe = Pipeline(docket.redis)
    for q, i in executions:
        k = docket.keys(q)
        pipe.script(_cancel_script, [k.stream, k.due, k.run(i)], [GROUP, i])
    return [_text(outcome) for outcome in pipe.execute()]


@dataclass
class DeadLetter:
    """One entry of a queue's dead-letter stream."""

    entry_id: str
    queue: str
    execution_id: str
    function: str
    reason: str
    attempt: int
    keyed: bool
    when: float
    """Epoch seconds it was dead-lettered (0 when unknown)."""
    body: bytes
    message_id: str = ""


def _int(value: Any, default: int) -> int:
    """A number field of a dead letter; a malformed one must not hide the others."""
    try:
        return int(_text(value)) if value is not None else default
    except ValueError:
        return default


def dead_letters(docket: Docket, queue: str, count: int | None = None) -> list[DeadLetter]:
    """The dead letters of ``queue``, newest first (at most ``count``); a sharded queue's
    shards merged, each letter naming its shard (where a replay puts it back)."""
    out: list[DeadLetter] = []
    for shard in docket.shard_queues(queue):
        out.extend(_dead_letters(docket, shard, count))
    if len(out) > 1:
        out.sort(key=lambda d: tuple(int(p) for p in d.entry_id.split("-")), reverse=True)
    return out[:count] if count is not None else out


def _dead_letters(docket: Docket, queue: str, count: int | None) -> list[DeadLetter]:
    rows = docket.redis.xrevrange(docket.keys(queue).dead, "+", "-", count=count)
    out: list[DeadLetter] = []
    for entry_id, fields in rows:
        f = {_text(k): v for k, v in fields.items()}
        out.append(
            DeadLetter(
                entry_id=_text(entry_id),
                queue=_text(f.get("q", queue.encode())),
                execution_id=_text(f.get("i", b"")),
                function=_text(f.get("n", b"?")),
                reason=_text(f.get("r", b"")),
                attempt=_int(f.get("a"), 1),
                keyed=f.get("k") == b"1",
                when=_int(f.get("t"), 0) / 1000.0,
                body=bytes(f.get("b", b"")),
                message_id=_text(f.get("m", b"")),
            )
        )
    return out


def replay(docket: Docket, letter: DeadLetter) -> Execution:
    """Add the dead letter's message to its queue again (same execution id, key and attempt)
    and drop the dead letter once it is added. A keyed one whose key is live again is not
    added (``Execution.added`` is False) and its dead letter stays."""
    call = Call(
        letter.function,
        letter.body,
        queue=letter.queue,
        key=letter.execution_id if letter.keyed else None,
        execution_id=letter.execution_id,
        attempt=max(1, letter.attempt),
    )
    execution = docket.enqueue(call)
    if execution.added:
        docket.redis.xdel(docket.keys(letter.queue).dead, letter.entry_id)
    return execution


def drop_dead(docket: Docket, letters: Iterable[DeadLetter]) -> int:
    """Delete dead letters; returns how many were asked for."""
    pipe = docket.redis.pipeline(transaction=False)
    count = 0
    for d in letters:
        pipe.xdel(docket.keys(d.queue).dead, d.entry_id)
        count += 1
    if count:
        pipe.execute()
    return count


__all__ = ["DeadLetter", "cancel_many", "dead_letters", "drop_dead", "purge", "replay"]
