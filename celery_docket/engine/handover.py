"""Hand work over between this engine and another queue system on the same Redis, atomically.

A cutover moves messages out of a foreign structure (a list, or a hash of reserved messages
with a sorted-set index of when each was reserved) into a queue, and a rollback moves waiting
work back into a foreign list. Either way the removal from one side and the write on the
other happen in one script, so a message is never in both places nor in neither, even when
the mover dies half-way through a batch. The engine knows nothing of the foreign format:
callers pass the raw item to remove and the payload to write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .client import Client as Docket
from .keys import GROUP, queues_key
from .lua import Arg, Pipeline, Script
from .scripts import ADD

_TAKE = """
-- KEYS[4]: ADD's once token, KEYS[5]: the foreign list or hash, KEYS[6]: the hash's index
-- (or the list again). ARGV[12]: 'list' or 'indexed', ARGV[13]: the list item or the hash
-- field, ARGV[14]: for 'indexed', the latest index score an item may have to be taken
local src, idx, kind, item = KEYS[5], KEYS[6], ARGV[12], ARGV[13]
if kind == 'list' then
  if redis.call('LREM', src, -1, item) == 0 then return {'gone', '', '', ''} end
else
  local score = tonumber(redis.call('ZSCORE', idx, item) or '0')
  if score > tonumber(ARGV[14]) then return {'gone', '', '', ''} end
  if redis.call('HDEL', src, item) == 0 then return {'gone', '', '', ''} end
  redis.call('ZREM', idx, item)
end
"""

TAKE = _TAKE + ADD
"""Remove a foreign item, then (only if that removed it) add it as ADD does."""

GIVE_READY = """
-- KEYS: stream, foreign list, run key, a key to forget. ARGV: group, entry id, payload
if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('DEL', KEYS[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HGET', KEYS[3], 'm') == ARGV[2] then redis.call('DEL', KEYS[3]) end
redis.call('LPUSH', KEYS[2], ARGV[3])
return 1
"""

GIVE_PARKED = """
-- KEYS: due, run key, foreign list, a key to forget. ARGV: execution id, payload
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[4])
redis.call('DEL', KEYS[2])
redis.call('LPUSH', KEYS[3], ARGV[2])
return 1
"""

_take, _give_ready, _give_parked = Script(TAKE), Script(GIVE_READY), Script(GIVE_PARKED)


@dataclass(frozen=True)
class ForeignItem:
    """What to remove on the foreign side: an item of a list, or a field of an indexed hash
    whose index score (e.g. when it was reserved) must be at most ``max_score``."""

    kind: Literal["list", "indexed"]
    key: str
    item: str | bytes
    index: str | None = None
    max_score: float = 0.0


@dataclass(frozen=True)
class Waiting:
    """Work waiting in a queue: a ready stream entry (``entry_id``) or a parked execution
    (``due_ms``)."""

    queue: str
    execution_id: str
    function: str
    body: bytes
    perpetual: bool
    entry_id: str | None = None
    due_ms: int | None = None


class HandOverBatch:
    """Hand-over steps sent in one round trip; ``execute`` returns one reply per step:
    ``take``: 'queued', 'parked', 'exists' (its once token was seen) or 'gone' (the foreign
    item was not there); ``give``: True when the work left this engine."""

    def __init__(self, docket: Docket) -> None:
        if docket.backend.is_cluster:
            raise NotImplementedError(
                "hand-over between Celery's lists and the engine's streams is not supported on "
                "Redis Cluster: each step would touch two slots"
            )
        self.docket = docket
        self._pipe = Pipeline(docket.redis)
        self._queues: set[str] = set()
        self._steps = 0

    def take(
        self,
        source: ForeignItem,
        *,
        queue: str,
        execution_id: str,
        function: str,
        body: bytes,
        when_ms: int | None,
        once: str,
        once_ttl_ms: int,
    ) -> None:
        k = self.docket.keys(queue)
        self._queues.add(queue)
        index = source.index or source.key
        args: list[Arg] = [
            k.wake,
            execution_id,
            function,
            body,
            "" if when_ms is None else when_ms,
            "",
            "",
            1,
            "",
            GROUP,
            once_ttl_ms,
            source.kind,
            source.item,
            repr(source.max_score),
        ]
        if not once:
            raise ValueError("a hand-over take needs a once token")
        keys = [k.stream, k.due, k.run(execution_id), once, source.key, index]
        self._pipe.script(_take, keys, args)
        self._steps += 1

    def give(self, work: Waiting, target_list: str, payload: str | bytes, forget: str) -> None:
        """Move ``work`` to the foreign ``target_list`` as ``payload``; delete ``forget``."""
        k = self.docket.keys(work.queue)
        if work.entry_id is not None:
            keys = [k.stream, target_list, k.run(work.execution_id), forget]
            self._pipe.script(_give_ready, keys, [GROUP, work.entry_id, payload])
        else:
            keys = [k.due, k.run(work.execution_id), target_list, forget]
            self._pipe.script(_give_parked, keys, [work.execution_id, payload])
        self._steps += 1

    def execute(self) -> list[Any]:
        if not self._steps:
            return []
        registered = sorted(self._queues)
        if registered:
            self._pipe.command("sadd", queues_key(self.docket.prefix), *registered)
        replies = self._pipe.execute()
        self.docket.backend.notify()
        out: list[Any] = []
        for reply in replies[: self._steps]:
            if isinstance(reply, list):
                first = reply[0]
                out.append(first.decode() if isinstance(first, bytes) else str(first))
            else:
                out.append(bool(reply))
        return out


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def ready_entries(docket: Docket, queue: str, after: str = "-", count: int = 200) -> list[Waiting]:
    """Up to ``count`` stream entries of ``queue`` after entry id ``after`` (exclusive, or
    ``"-"`` for the start), delivered or not."""
    start = after if after == "-" else f"({after}"
    out = []
    for mid, fields in docket.redis.xrange(docket.keys(queue).stream, start, "+", count=count):
        out.append(
            Waiting(
                queue,
                _text(fields.get(b"i", b"")),
                _text(fields.get(b"n", b"")),
                fields.get(b"b", b""),
                fields.get(b"p") == b"1",
                entry_id=_text(mid),
            )
        )
    return out


def parked_entries(docket: Docket, queue: str, start: int = 0, count: int = 200) -> list[Waiting]:
    """Parked executions of ``queue``, earliest first, ``count`` from position ``start``."""
    k = docket.keys(queue)
    rows = docket.redis.zrange(k.due, start, start + count - 1, withscores=True)
    if not rows:
        return []
    read = docket.redis.pipeline(transaction=False)
    for raw_id, _ in rows:
        read.hgetall(k.run(_text(raw_id)))
    out = []
    for (raw_id, score), rec in zip(rows, read.execute(), strict=True):
        out.append(
            Waiting(
                queue,
                _text(raw_id),
                _text(rec.get(b"n", b"")),
                rec.get(b"b", b""),
                rec.get(b"p") == b"1",
                due_ms=int(score),
            )
        )
    return out


def batch(docket: Docket) -> HandOverBatch:
    return HandOverBatch(docket)


__all__: Sequence[str] = (
    "ForeignItem",
    "HandOverBatch",
    "Waiting",
    "batch",
    "parked_entries",
    "ready_entries",
)
