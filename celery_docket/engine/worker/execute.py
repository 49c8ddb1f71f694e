"""Running deliveries: inline (``solo``), on executor threads (``threads``), or on the
worker's event loop (coroutine handlers). Every failure of a handler becomes an outcome;
nothing escapes to kill a thread, and every outcome goes to the committer at once."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable

from ..errors import Undeliverable
from ..keys import GROUP
from ..messages import Delivery, Outcome
from .state import RECOVERABLE, InFlight, WorkerState, log


class Executing(WorkerState):
    """The executors' part of ``Worker``."""

    def _track_batch(self, batch: list[Delivery]) -> None:
        """Remember entries until their commit; ``started`` is taken before the read that
        delivered them, so ``now - started`` never understates their idle time."""
        started = self._read_started
        with self._inflight_lock:
            for d in batch:  # reclaimed entries are held already, since their claim
                self._inflight.setdefault(d.message_id, InFlight(d, started))

    def _ack_early(self, batch: list[Delivery]) -> None:
        """At-most-once deliveries are acked before they run."""
        early = [d for d in batch if self._acks_early is not None and self._acks_early(d)]
        if not early:
            return
        pipe = self.redis.pipeline(transaction=False)
        for d in early:
            stream = self.keys[d.queue].stream
            pipe.xack(stream, GROUP, d.message_id)
            pipe.xdel(stream, d.message_id)
        pipe.execute()
        with self._inflight_lock:
            for d in early:
                flight = self._inflight.get(d.message_id)
                if flight is not None:
                    flight.early_acked = True

    def _hand_over(self, d: Delivery, outcome: Outcome) -> None:
        with self._outcome_ready:
            self._outcomes.append((d, outcome))
            self._outcome_ready.notify()

    def _run_solo(self, batch: list[Delivery]) -> None:
        """Run a batch inline; each outcome goes to the committer thread as soon as it is
        known, so a finished result never waits behind the next (slow) task, and a process
        killed during the next task (a hard time limit) does not run the finished one again.
        Quick tasks still share round trips: the committer takes all that are ready."""
        self._track_batch(batch)
        self._ack_early(batch)
        for index, d in enumerate(batch):
            if self.stopping:
                self._hand_back(batch[index:])
                break
            self._hand_over(d, self._execute(d))

    def _executor_loop(self) -> None:
        while True:
            d = self._work.get()
            if d is None:
                return
            with self._inflight_lock:
                flight = self._inflight.get(d.message_id)
            if flight is not None and self._acks_early is not None and self._acks_early(d):
                try:
                    self._ack_early([d])
                except RECOVERABLE as exc:
                    log.warning("worker: early ack failed (%s); running anyway", exc)
            try:
                outcome = self._execute(d)
            except BaseException as exc:  # noqa: BLE001 - a hook failed: the slot must come back
                log.exception("worker: executing %s failed", d.execution_id)
                outcome = Outcome.dead(f"handler crashed: {exc!r}")
            self._hand_over(d, outcome)

    def _execute(self, d: Delivery) -> Outcome:
        """Run the handler; every failure mode becomes an outcome, nothing escapes."""
        if d.delivery_count > self.settings.max_deliveries:
            reason = (
                f"delivered {d.delivery_count} times (max_deliveries="
                f"{self.settings.max_deliveries}); the runner died or stalled each time"
            )
            if self._give_up is not None:
                try:
                    return self._give_up(d, reason)
                except Exception:  # noqa: BLE001 - the dead letter matters more than the handler's record
                    log.exception("worker: give-up hook failed for %s", d.execution_id)
            return Outcome.dead(reason)
        outcome: Outcome
        try:
            with self._inflight_lock:
                self._running[d.message_id] = time.time()
            for before in self.hooks.before_run:  # raising here: dead-lettered as a crash
                before(self, d)
            result = self.handler(d)
            if inspect.isawaitable(result):
                result = self._await(result)
            assert isinstance(result, Outcome), f"handler returned {result!r}"
            outcome = result
        except Undeliverable as exc:
            log.error("worker: dead-lettering %s: %s", d.execution_id, exc.reason)
            outcome = Outcome.dead(exc.reason)
        except Exception as exc:  # noqa: BLE001 - a crashing handler dead-letters the delivery, never the loop
            log.exception("worker: handler crashed on %s", d.execution_id)
            outcome = Outcome.dead(f"handler crashed: {exc!r}")
        except BaseException as exc:  # noqa: BLE001 - SystemExit in a task must not kill the executor
            log.exception("worker: handler raised %r on %s", exc, d.execution_id)
            outcome = Outcome.dead(f"handler crashed: {exc!r}")
        finally:
            self.processed += 1
            with self._inflight_lock:
                self._running.pop(d.message_id, None)
                self._ran.add(d.message_id)
        if self.hooks.after_run:
            self.hooks.fire("after_run", self, d, outcome)
        return outcome

    def _await(self, awaitable: Awaitable[Outcome]) -> Outcome:
        """Coroutine handlers run on the worker's own event loop thread."""
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._start_thread(loop.run_forever, "docket-asyncio")
                self._loop = loop

        async def _wrap() -> Outcome:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(_wrap(), self._loop).result()
