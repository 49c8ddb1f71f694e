"""Results on Redis Cluster: committed with the ack in the queue's slot, then copied out.

On one server the commit scripts (``COMPLETE``, ``ACK_FAST``) set the result key in the same
atomic step as the ack, so "result stored ⇔ acked" holds. On a cluster the result key
(``celery-task-meta-<id>``) hashes to another slot than the queue, and a script may touch
one slot only. So in cluster mode:

1. the commit script writes the result into the queue's outbox (a hash under the queue's
   tag: ``v:<result key>`` the value, ``m:<result key>`` "<msgid> <ttl ms> <written ms>")
   atomically with the ack: an acked entry always has its result stored, in the outbox or
   already copied;
2. right after the commit, the worker copies each result to its own key and publishes it
   (``SET`` + ``PUBLISH``, one pipeline split per node), then removes the outbox fields with
   ``FINISH``, which deletes them only if they still name the same message (a newer outcome
   of the same task id stays for its own copy);
3. a worker that died between 1 and 2 leaves fields behind: every worker's keeper sweeps the
   outboxes of its queues and finishes fields older than ``SWEEP_AFTER_MS``.

Step 2 repeated (a sweep racing a slow copy) writes the same value again and publishes it
again: idempotent for readers, who stop at the first announcement. A result's TTL counts
from its copy. A reader that polls between 1 and 2 sees no result yet, exactly as if the
task were still finishing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .lua import Pipeline, Script

FINISH = """
-- KEYS: outbox. ARGV: pairs of result key, msgid. Deletes an entry's fields only while they
-- still belong to that message. Returns how many it deleted.
local n = 0
for j = 1, #ARGV, 2 do
  local rkey, mid = ARGV[j], ARGV[j + 1]
  local meta = redis.call('HGET', KEYS[1], 'm:' .. rkey)
  if meta and string.sub(meta, 1, #mid + 1) == mid .. ' ' then
    redis.call('HDEL', KEYS[1], 'v:' .. rkey, 'm:' .. rkey)
    n = n + 1
  end
end
return n
"""

_finish = Script(FINISH)

SWEEP_AFTER_MS = 10_000
"""An outbox entry this old (by its Redis write time against this host's clock) was left by a
worker that died before copying it; well above a copy's round trip plus clock skew."""

SWEEP_LIMIT = 500
"""Entries finished per queue per sweep: a large backlog drains over several passes."""


@dataclass(frozen=True)
class Pending:
    """One result to copy out of ``outbox``."""

    outbox: str
    key: str
    value: bytes
    ttl_ms: int
    message_id: str


def deliver(client: Any, items: Sequence[Pending]) -> None:
    """Copy results to their keys, announce them, then clear their outbox fields.

    Two round trips: the clearing must follow the writes it vouches for.
    """
    if not items:
        return
    pipe = Pipeline(client)
    for p in items:
        if p.ttl_ms > 0:
            pipe.command("set", p.key, p.value, px=p.ttl_ms)
        else:
            pipe.command("set", p.key, p.value)
        pipe.command("publish", p.key, p.value)
    pipe.execute()
    by_outbox: dict[str, list[str]] = {}
    for p in items:
        by_outbox.setdefault(p.outbox, []).extend((p.key, p.message_id))
    finish = Pipeline(client)
    for outbox, args in by_outbox.items():
        finish.script(_finish, [outbox], args)
    finish.execute()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def leftovers(
    client: Any, outbox: str, *, older_than_ms: int = SWEEP_AFTER_MS, now_ms: float | None = None
) -> list[Pending]:
    """Entries of ``outbox`` written more than ``older_than_ms`` ago (at most SWEEP_LIMIT)."""
    now = time.time() * 1000.0 if now_ms is None else now_ms
    fields: dict[bytes, bytes] = {}
    for field, value in client.hscan_iter(outbox, count=200):
        fields[field] = value
        if len(fields) >= 2 * SWEEP_LIMIT:
            break
    out: list[Pending] = []
    for field, meta in fields.items():
        name = _text(field)
        if not name.startswith("m:"):
            continue
        key = name[2:]
        value = fields.get(b"v:" + key.encode())
        if value is None:
            value = client.hget(outbox, "v:" + key)
            if value is None:
                continue
        parts = _text(meta).split(" ")
        if len(parts) != 3:
            continue
        mid, ttl, written = parts
        if now - float(written) < older_than_ms:
            continue
        out.append(Pending(outbox, key, value, int(ttl), mid))
    return out


def sweep(client: Any, outboxes: Iterable[str], *, older_than_ms: int = SWEEP_AFTER_MS) -> int:
    """Finish what dead workers left in ``outboxes``; returns how many results it copied."""
    found = [p for o in outboxes for p in leftovers(client, o, older_than_ms=older_than_ms)]
    deliver(client, found)
    return len(found)


__all__ = ["FINISH", "SWEEP_AFTER_MS", "Pending", "deliver", "leftovers", "sweep"]
