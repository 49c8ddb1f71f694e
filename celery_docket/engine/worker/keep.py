"""What a worker holds and keeps: leases, the heartbeat, reclaim and adoption.

Everything a worker has claimed (read, reclaimed from an expired lease, adopted from a dead
predecessor) is in ``_inflight`` from the moment it is claimed until it is committed or
handed back, whether it runs, waits for a free slot or waits for its commit; the keeper
renews all of it. A worker reclaims no more than it has free capacity for, so what it claims
starts soon, and what waits keeps its lease meanwhile.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from .. import outbox
from ..keys import GROUP, heartbeat_key
from ..keys import workers_key as workers_key  # re-exported: engine.worker exports it
from ..messages import Delivery
from .state import RECOVERABLE, InFlight, WorkerState, log, text


def _zombie(pid: int) -> bool:
    """A process that exited and was not reaped (its parent died too, under an init that
    does not reap, e.g. after kill -9 of a whole prefork group) answers ``kill(pid, 0)``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class LeaseKeeping(WorkerState):
    """The keeper's part of ``Worker``: renew, reclaim, adopt, heartbeat."""

    # -- holding ---------------------------------------------------------------------------

    def _hold_waiting(self, found: list[Delivery], claimed_at: float) -> None:
        """Queue reclaimed or adopted entries for a free slot, leased (renewed) meanwhile."""
        with self._inflight_lock:
            for d in found:
                if d.message_id in self._inflight:
                    continue  # already held: a second claim of our own entry
                self._inflight[d.message_id] = InFlight(d, claimed_at)
                self._waiting.add(d.message_id)
                self._reclaimed.append(d)

    def _take_reclaimed(self, count: int) -> list[Delivery]:
        """Up to ``count`` waiting entries whose lease this worker still holds."""
        out: list[Delivery] = []
        with self._inflight_lock:
            while self._reclaimed and len(out) < count:
                d = self._reclaimed.popleft()
                if d.message_id in self._waiting:
                    self._waiting.discard(d.message_id)
                    out.append(d)
        return out

    def _take_work(self, count: int) -> list[Delivery]:
        """Reclaimed entries first; when a reclaim pass left more behind, claim again now
        (the reader's thread) instead of waiting for the keeper."""
        batch = self._take_reclaimed(count)
        if not batch and self._reclaim_more and not self.stopping:
            self._reclaim_expired()
            batch = self._take_reclaimed(count)
        return batch

    def _free_capacity(self) -> int:
        """Entries this worker could start now: slots not taken by anything it holds."""
        with self._inflight_lock:
            return self.settings.concurrency - len(self._inflight)

    # -- adoption --------------------------------------------------------------------------

    def _adopt_own_orphans(self) -> None:
        """Claim at once the pending entries of this node's previous (dead) incarnations."""
        prefix = f"{self.node}:"
        for q, k in self.keys.items():
            for info in self.redis.xinfo_consumers(k.stream, GROUP):
                name = text(info["name"])
                if name == self.consumer or not name.startswith(prefix):
                    continue
                if self._alive(name):
                    log.warning("worker: another live worker uses node name %s", self.node)
                    continue
                if int(info.get("pending", 0)):
                    claimed_at = time.monotonic()
                    pending = self.redis.xpending_range(
                        k.stream, GROUP, "-", "+", 10_000, consumername=name
                    )
                    ids = [p["message_id"] for p in pending]
                    counts = {text(p["message_id"]): int(p["times_delivered"]) for p in pending}
                    claimed = (
                        self.redis.xclaim(k.stream, GROUP, self.consumer, 0, ids) if ids else []
                    )
                    found: list[Delivery] = []
                    for mid, fields in claimed:
                        if fields is None:
                            continue
                        d = self._delivery(q, text(mid), fields)
                        if d is not None:
                            d.delivery_count = counts.get(d.message_id, 1) + 1
                            found.append(d)
                    self._attach_fates(found)
                    self._hold_waiting(found, claimed_at)
                    log.info("worker: adopted %d entries of %s on %s", len(claimed), name, q)
                self.redis.xgroup_delconsumer(k.stream, GROUP, name)

    def _forget_dead_predecessors(self) -> None:
        """Drop the heartbeats of this node's dead earlier incarnations, so inspection does
        not show them until they expire."""
        index = workers_key(self.docket.prefix)
        prefix = f"{self.node}:"
        for member in self.redis.zrange(index, 0, -1):
            name = text(member)
            if name == self.consumer or not name.startswith(prefix) or self._alive(name):
                continue
            self.redis.delete(heartbeat_key(self.docket.prefix, name))
            self.redis.zrem(index, name)

    def _alive(self, consumer: str) -> bool:
        """Is that consumer's process alive? A heartbeat from this host whose pid is gone
        belongs to a dead predecessor (e.g. SIGKILLed and restarted by a supervisor)."""
        raw = self.redis.get(heartbeat_key(self.docket.prefix, consumer))
        if raw is None:
            return False
        try:
            info = json.loads(raw)
            host, pid = info.get("host"), int(info.get("pid"))
        except (ValueError, TypeError):
            return True
        if host != socket.gethostname() or pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _zombie(pid)

    # -- keeping ---------------------------------------------------------------------------

    def _beat_heart(self) -> None:
        if self._stopped.is_set():
            return  # the key is deleted on the way out: never write it back
        now = time.time()
        held = self.deliveries()
        info: dict[str, Any] = {
            "consumer": self.consumer,
            "node": self.node,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.consuming(),
            "pool": self.settings.pool,
            "concurrency": self.settings.concurrency,
            "processed": self.processed,
            "started": self.started_at,
            "active": len(held),
            "running": sum(1 for _d, s in held if s is not None),
            "beat": now,
            "deliveries": [
                {
                    "m": d.message_id,
                    "i": d.execution_id,
                    "q": d.queue,
                    "n": d.function,
                    "c": d.delivery_count,
                    "r": d.received_at,
                    "s": s,
                }
                for d, s in held[:1000]
            ],
        }
        if self.heartbeat_extra is not None:
            try:
                info.update(self.heartbeat_extra())
            except Exception:  # noqa: BLE001 - the heartbeat itself must go out
                log.exception("worker: heartbeat extra failed")
        ttl = max(int(self.settings.lease_seconds * 1000), 3000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(heartbeat_key(self.docket.prefix, self.consumer), json.dumps(info), px=ttl)
        pipe.zadd(workers_key(self.docket.prefix), {self.consumer: int(now * 1000)})
        pipe.execute()

    def _renew_leases(self) -> None:
        """Renew everything held for more than a third of a lease: running, waiting for a
        slot, or waiting for its commit. A waiting entry whose lease was lost is dropped,
        so it never starts here after another worker took it over."""
        threshold = time.monotonic() - self.settings.lease_seconds / 3.0
        with self._inflight_lock:
            old = [f.delivery for f in self._inflight.values() if f.started < threshold]
        by_queue: dict[str, list[str]] = {}
        for d in old:
            by_queue.setdefault(d.queue, []).append(d.message_id)
        for q, mids in by_queue.items():
            k = self.keys[q]
            lost = self._renew(self.redis, [k.stream], [GROUP, self.consumer, *mids])
            for raw in lost or []:
                mid = text(raw)
                with self._inflight_lock:
                    waiting = mid in self._waiting
                    if waiting:
                        self._waiting.discard(mid)
                        self._inflight.pop(mid, None)
                log.warning(
                    "worker: lease of %s on %s was lost%s",
                    mid,
                    q,
                    " before it started; dropped" if waiting else "",
                )

    def _reclaim_expired(self) -> None:
        """Take over entries whose runner stopped renewing its lease (dead or frozen), no
        more than this worker has free capacity for. A cursor per queue walks the whole
        PEL; while a pass finds work, the reader calls this again as soon as slots free
        (``_reclaim_more``), so a large PEL drains at the pace tasks finish, not one batch
        per keeper period."""
        if not self._reclaim_lock.acquire(blocking=False):
            return  # the keeper and the reader never claim at the same time
        try:
            self._reclaim_pass()
        finally:
            self._reclaim_lock.release()

    def _reclaim_pass(self) -> None:
        free = self._free_capacity()
        if free <= 0:
            return
        idle_ms = int(self.settings.lease_seconds * 1000)
        found: list[Delivery] = []
        more = False
        claimed_at = time.monotonic()
        for q, k in self.keys.items():
            if q in self._paused or len(found) >= free:
                continue
            start = self._reclaim_cursor.get(q, "0-0")
            reply = self.redis.xautoclaim(
                k.stream, GROUP, self.consumer, idle_ms, start, count=free - len(found)
            )
            cursor = text(reply[0])
            self._reclaim_cursor[q] = cursor
            entries = reply[1]
            more = more or cursor != "0-0" or len(entries) >= free - len(found)
            for mid, fields in entries:
                if fields is None:
                    continue
                d = self._delivery(q, text(mid), fields)
                if d is not None:
                    found.append(d)
        self._reclaim_more = more and bool(found)
        if not found:
            return
        pipe = self.redis.pipeline(transaction=False)
        for d in found:
            pipe.xpending_range(self.keys[d.queue].stream, GROUP, d.message_id, d.message_id, 1)
        for d, pending in zip(found, pipe.execute(), strict=True):
            if pending:
                d.delivery_count = int(pending[0]["times_delivered"])
        self._attach_fates(found)
        log.warning("worker: reclaimed %d entries whose lease expired", len(found))
        self._hold_waiting(found, claimed_at)
        self.docket.backend.notify()

    def _attach_fates(self, deliveries: list[Delivery]) -> None:
        """Read why a supervisor killed an earlier runner of these entries, if it did."""
        if not deliveries:
            return
        pipe = self.redis.pipeline(transaction=False)
        for d in deliveries:
            pipe.hget(self.keys[d.queue].fates, d.message_id)
        for d, fate in zip(deliveries, pipe.execute(), strict=True):
            if fate is not None:
                d.fate = text(fate)

    def _sweep_outboxes(self) -> None:
        """Cluster: finish results a dead worker committed but never copied (``outbox``)."""
        now = time.monotonic()
        if now - getattr(self, "_swept_at", 0.0) < outbox.SWEEP_AFTER_MS / 2000.0:
            return
        self._swept_at = now
        outboxes = [k.outbox for k in self.keys.values()]
        copied = outbox.sweep(self.redis, outboxes, older_than_ms=outbox.SWEEP_AFTER_MS)
        if copied:
            log.warning("worker: copied %d result(s) a stopped worker left in an outbox", copied)

    def _keeper_loop(self) -> None:
        """Runs until the worker has fully stopped: a graceful drain longer than the lease
        must keep its leases, or another worker would run the same entries again."""
        period = max(0.05, min(self.settings.lease_seconds / 3.0, 10.0))
        last_perpetual = time.monotonic()
        while not self._stopped.wait(period):
            try:
                self._beat_heart()
                self._renew_leases()
                if self.stopping:
                    continue
                self._reclaim_expired()
                if self.docket.backend.is_cluster:
                    self._sweep_outboxes()
                if time.monotonic() - last_perpetual > self.settings.perpetual_refresh_seconds:
                    self._assert_perpetuals()
                    last_perpetual = time.monotonic()
            except RECOVERABLE as exc:
                log.warning("worker: keeper lost Redis (%s); retrying", exc)
            except Exception:  # noqa: BLE001 - the keeper loop must outlive any one failure
                log.exception("worker: keeper failed; retrying")
