"""The mover loop: due work goes from each queue's sorted set to its stream.

One atomic script per queue moves at most ``move_batch`` due entries, on Redis's clock. The
loop then sleeps in the client until the earliest due time (bounded: ``move_idle_seconds``,
a second), woken early by a pub/sub notice when an earlier time is parked: a short blocking
read is no timer (with Redis's default ``hz 10`` it returns after ~100 ms).

The wake-up time is the head's due time on the local clock, through an offset measured to the
microsecond at each move (Redis's ``TIME`` taken as read half-way through the round trip).
Rounding Redis's now down to the millisecond would oversleep by up to a millisecond; a
wake-up a little early costs one more move that finds nothing due, never an early start:
what is due is decided by the script, on Redis's clock.
"""

from __future__ import annotations

import time
from typing import Any

from ..lua import Pipeline
from .state import RECOVERABLE, WorkerState, log


class Moving(WorkerState):
    """The mover's part of ``Worker``."""

    def _move_due(self) -> float:
        """Move due work of every queue; returns when to wake up for the next due time, on
        the monotonic clock (a wall-clock step must not stall the mover), at most
        ``move_idle_seconds`` away."""
        queues, batch = list(self.keys.values()), self.settings.move_batch
        sent = time.time()
        if len(queues) == 1:  # the common case: no pipeline (most of a move's client CPU)
            k = queues[0]
            replies = [self._move(self.redis, [k.due, k.stream], [k.run_prefix, batch])]
        else:
            pipe = Pipeline(self.redis)
            for k in queues:
                pipe.script(self._move, [k.due, k.stream], [k.run_prefix, batch])
            replies = pipe.execute()
        received, received_monotonic = time.time(), time.monotonic()
        local_ms = (sent + received) * 500.0  # the local time Redis's TIME is taken as
        wake_at = received + self.settings.move_idle_seconds
        moved = 0
        for count, head, now, micros in replies:
            moved += int(count)
            self.clock_offset_ms = int(now) + int(micros) / 1000.0 - local_ms
            if int(count) >= self.settings.move_batch:
                wake_at = received
            head_ms = float(head)
            if head_ms >= 0:
                wake_at = min(wake_at, (head_ms - self.clock_offset_ms) / 1000.0)
        if moved:
            self.docket.backend.notify()
        return received_monotonic + (wake_at - received)

    def _sleep_until(self, pubsub: Any, wake_at: float) -> None:
        """Sleep until ``wake_at`` (monotonic) or a wake-up notice; a stop is noticed within
        a second."""
        while not self.stopping:
            wait = wake_at - time.monotonic()
            if wait <= 0:
                return
            if pubsub.get_message(timeout=min(wait, 1.0)) is not None:
                # drain extra notices so one burst of adds costs one move
                while pubsub.get_message(timeout=0) is not None:
                    pass
                return

    def _mover_loop(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        subscribed = False
        while not self.stopping:
            try:
                if not subscribed:
                    pubsub.subscribe(*[k.wake for k in self.keys.values()])
                    subscribed = True
                self._sleep_until(pubsub, self._move_due())
            except (*RECOVERABLE, TypeError) as exc:
                # TypeError: redis-py's pub/sub reading a socket another thread just closed
                # (a Sentinel failover resets the pool under it); the mover must outlive it
                log.warning("worker: mover lost Redis (%r); retrying", exc)
                subscribed = False
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001 - the connection is already broken
                    pass
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                self._stopping.wait(1.0)
        pubsub.close()
