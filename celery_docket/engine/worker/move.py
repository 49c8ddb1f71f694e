"""The mover loop: due work goes from each queue's sorted set to its stream.

One atomic script per queue moves at most ``move_batch`` due entries, on Redis's clock. The
loop then sleeps in the client until the earliest due time (bounded to a second), woken early
by a pub/sub notice when an earlier time is parked: a short blocking read is no timer (with
Redis's default ``hz 10`` it returns after ~100 ms).
"""

from __future__ import annotations

import time

from ..lua import Pipeline
from .state import RECOVERABLE, WorkerState, log


class Moving(WorkerState):
    """The mover's part of ``Worker``."""

    def _move_due(self) -> float:
        """Move due work of every queue; returns seconds until the next due time (bounded)."""
        pipe = Pipeline(self.redis)
        for k in self.keys.values():
            pipe.script(self._move, [k.due, k.stream], [k.run_prefix, self.settings.move_batch])
        replies = pipe.execute()
        local_now = time.time() * 1000
        wait = 1.0
        moved = 0
        for count, head, now in replies:
            moved += int(count)
            self.clock_offset_ms = int(now) - local_now
            if int(count) >= self.settings.move_batch:
                wait = 0.0
            head_ms = float(head)
            if head_ms >= 0:
                wait = min(wait, max(0.0, (head_ms - int(now)) / 1000.0))
        if moved:
            self.docket.backend.notify()
        return wait

    def _mover_loop(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        subscribed = False
        while not self.stopping:
            try:
                if not subscribed:
                    pubsub.subscribe(*[k.wake for k in self.keys.values()])
                    subscribed = True
                wait = self._move_due()
                if wait > 0:
                    pubsub.get_message(timeout=wait)
                    # drain extra notices so one burst of adds costs one move
                    while pubsub.get_message(timeout=0) is not None:
                        pass
            except RECOVERABLE as exc:
                log.warning("worker: mover lost Redis (%s); retrying", exc)
                subscribed = False
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001 - the connection is already broken
                    pass
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                self._stopping.wait(1.0)
        pubsub.close()
