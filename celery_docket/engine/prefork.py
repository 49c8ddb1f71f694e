"""The prefork pool: a supervisor that forks N child consumers and keeps them alive.

Each child is an ordinary solo ``Worker`` named ``<node>-<slot>``, so a child that replaces a
dead one adopts its pending entries at once. The supervisor restarts children that exit
(max-tasks-per-child, crashes) and enforces hard time limits: each child publishes the
deadline of the task it is running in a shared memory slot; past it, the supervisor records
the message's fate in Redis and kills the child, and the replacement reports the outcome
instead of running the task again.
"""

from __future__ import annotations

import logging
import mmap
import os
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from .docket import Docket
from .keys import QueueKeys
from .messages import Delivery
from .worker import Worker

log = logging.getLogger("celery_docket.engine.prefork")

_SLOT = struct.Struct("d d 64s 128s")  # deadline (monotonic), limit seconds, msgid, queue

MakeWorker = Callable[[int, Callable[[Delivery], None], Callable[[Delivery], None]], Worker]
"""Build the child's worker for slot i, given its on_task_start/on_task_end hooks."""


@dataclass
class _Child:
    slot: int
    pid: int
    started: float


class Supervisor:
    """Fork ``processes`` children running ``make_worker(slot, start_hook, end_hook).run()``."""

    def __init__(
        self,
        make_worker: MakeWorker,
        processes: int,
        *,
        make_docket: Callable[[], Docket],
        time_limit: Callable[[Delivery], float | None] = lambda _d: None,
        on_child_start: Callable[[int], None] | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        self.make_worker = make_worker
        self.processes = processes
        self.make_docket = make_docket
        self.time_limit = time_limit
        self.on_child_start = on_child_start
        self.poll_interval = poll_interval
        self.children: dict[int, _Child] = {}
        self._memory = mmap.mmap(-1, _SLOT.size * processes)
        self._stopping = False
        self._restarts = 0

    # -- shared slots ---------------------------------------------------------------------

    def _write_slot(self, slot: int, deadline: float, limit: float, mid: str, queue: str) -> None:
        offset = slot * _SLOT.size
        self._memory[offset : offset + _SLOT.size] = _SLOT.pack(
            deadline, limit, mid.encode()[:64], queue.encode()[:128]
        )

    def _read_slot(self, slot: int) -> tuple[float, float, str, str]:
        offset = slot * _SLOT.size
        deadline, limit, mid, queue = _SLOT.unpack(self._memory[offset : offset + _SLOT.size])
        return deadline, limit, mid.rstrip(b"\0").decode(), queue.rstrip(b"\0").decode()

    # -- children -------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        self._write_slot(slot, 0.0, 0.0, "", "")
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                if self.on_child_start is not None:
                    self.on_child_start(slot)

                def start(d: Delivery) -> None:
                    limit = self.time_limit(d)
                    if limit:
                        self._write_slot(
                            slot, time.monotonic() + limit, limit, d.message_id, d.queue
                        )

                def end(_d: Delivery) -> None:
                    self._write_slot(slot, 0.0, 0.0, "", "")

                worker = self.make_worker(slot, start, end)
                worker.install_signal_handlers()
                worker.run()
            except BaseException:  # noqa: BLE001 - report and exit non-zero, never unwind into the parent's code
                log.exception("prefork: child %d crashed", slot)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = _Child(slot, pid, time.monotonic())

    def _enforce_time_limits(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            deadline, limit, mid, queue = self._read_slot(child.slot)
            if deadline and now > deadline and mid:
                log.error(
                    "prefork: hard time limit (%.1fs) exceeded for %s; killing child %d",
                    limit,
                    mid,
                    child.pid,
                )
                try:
                    docket = self.make_docket()
                    prefix = docket.prefix
                    docket.redis.hset(QueueKeys(prefix, queue).fates, mid, f"time_limit:{limit}")
                    docket.close()
                except Exception:  # noqa: BLE001 - killing matters more than the record
                    log.exception("prefork: could not record the fate of %s", mid)
                self._write_slot(child.slot, 0.0, 0.0, "", "")
                try:
                    os.kill(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            if not self._stopping:
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    log.warning("prefork: child %d (slot %d) exited with %d", pid, child.slot, code)
                self._restarts += 1
                self._spawn(child.slot)

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns 0 after every child exited cleanly."""

        def _graceful(signum: int, _frame: object) -> None:
            log.info("prefork: %s received, stopping children", signal.Signals(signum).name)
            self._stopping = True

        signal.signal(signal.SIGTERM, _graceful)
        signal.signal(signal.SIGINT, _graceful)
        for slot in range(self.processes):
            self._spawn(slot)
        while not self._stopping:
            self._reap()
            self._enforce_time_limits()
            time.sleep(self.poll_interval)
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        worst = 0
        for pid in list(self.children):
            while True:
                self._enforce_time_limits()
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    worst = max(worst, abs(os.waitstatus_to_exitcode(status)))
                    break
                time.sleep(self.poll_interval)
            self.children.pop(pid, None)
        return worst
