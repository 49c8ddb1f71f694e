"""The prefork pool: a supervisor that forks N child consumers and keeps them alive.

Each child is an ordinary solo ``Worker`` named ``<node>-<slot>``, so a child that replaces a
dead one adopts its pending entries at once. The supervisor restarts children that exit
(max-tasks-per-child, crashes) and enforces hard time limits: each child publishes the
deadline of the task it is running in a shared memory slot; past it, the supervisor records
the message's fate in Redis and kills the child, and the replacement reports the outcome
instead of running the task again.

The slot also names the task a child is running (``label``, the execution id unless the
caller says otherwise), so ``terminate(labels, signum)`` can find the child running a task,
record the fate ``revoked:<signum>`` and signal it: its replacement reports the task as
terminated instead of running it again. The pool can grow and shrink while it runs, and an
``on_poll`` hook runs in the supervisor's loop (a remote-control listener, for instance),
so the supervisor stays single-threaded.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .client import Client
from .hooks import Hook, WorkerView
from .keys import GROUP, QueueKeys
from .lua import Pipeline, Script
from .messages import Delivery, Outcome
from .scripts import RENEW
from .worker import Worker

log = logging.getLogger("celery_docket.engine.prefork")

# deadline (monotonic, 0: none), limit seconds, signal asked to kill the child (0: none),
# msgid, queue, label (the task the child runs; empty when idle), consumer (its lease holder)
_SLOT = struct.Struct("d d i 64s 128s 200s 160s")
_PR_SET_PDEATHSIG = 1
REVOKED_FATE = "revoked"
"""Prefix of the fate recorded for a message whose runner was terminated on request."""

MakeWorker = Callable[[int, Hook], Worker]
"""Build the child's worker for slot i; it must attach the given hook (``worker.hooks.add``),
which publishes the running task in the child's shared slot."""


@dataclass
class _Child:
    slot: int
    pid: int
    started: float


@dataclass(frozen=True)
class SlotState:
    """What one child is doing, read from its shared slot."""

    slot: int
    pid: int
    label: str
    message_id: str
    queue: str


class Supervisor:
    """Fork ``processes`` children running ``make_worker(slot, slot_hook).run()``."""

    def __init__(
        self,
        make_worker: MakeWorker,
        processes: int,
        *,
        make_docket: Callable[[], Client],
        time_limit: Callable[[Delivery], float | None] = lambda _d: None,
        on_child_start: Callable[[int], None] | None = None,
        poll_interval: float = 0.05,
        label: Callable[[Delivery], str] = lambda d: d.execution_id,
        on_poll: Callable[[Supervisor], None] | None = None,
        max_processes: int | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        self.make_worker = make_worker
        self.processes = processes
        self.make_docket = make_docket
        self.time_limit = time_limit
        self.on_child_start = on_child_start
        self.poll_interval = poll_interval
        self.label = label
        self.on_poll = on_poll
        self.capacity = max(processes, max_processes or max(4 * processes, 64))
        self.children: dict[int, _Child] = {}
        self._memory = mmap.mmap(-1, _SLOT.size * self.capacity)
        self._stopping = False
        self._cold = False
        self._restarts = 0
        self._retiring: set[int] = set()
        """Slots whose child was asked to exit for good (pool shrink)."""
        self.lease_seconds = lease_seconds
        """Renew the leases of the children's running tasks every third of it (None: not)."""
        self._renewer: LeaseRenewer | None = None

    # -- shared slots ---------------------------------------------------------------------

    def _write_slot(
        self,
        slot: int,
        deadline: float,
        limit: float,
        mid: str,
        queue: str,
        label: str = "",
        kill: int = 0,
        consumer: str = "",
    ) -> None:
        offset = slot * _SLOT.size
        self._memory[offset : offset + _SLOT.size] = _SLOT.pack(
            deadline,
            limit,
            kill,
            mid.encode()[:64],
            queue.encode()[:128],
            label.encode()[:200],
            consumer.encode()[:160],
        )

    def _read_slot(self, slot: int) -> tuple[float, float, str, str]:
        deadline, limit, _kill, mid, queue, _label = self._read_full(slot)
        return deadline, limit, mid, queue

    def _read_full(self, slot: int) -> tuple[float, float, int, str, str, str]:
        offset = slot * _SLOT.size
        deadline, limit, kill, mid, queue, label, _consumer = _SLOT.unpack(
            self._memory[offset : offset + _SLOT.size]
        )
        return (
            deadline,
            limit,
            kill,
            mid.rstrip(b"\0").decode(),
            queue.rstrip(b"\0").decode(),
            label.rstrip(b"\0").decode("utf-8", "replace"),
        )

    def _consumer_of(self, slot: int) -> str:
        offset = slot * _SLOT.size
        raw = _SLOT.unpack(self._memory[offset : offset + _SLOT.size])[6]
        return str(raw.rstrip(b"\0").decode("utf-8", "replace"))

    def _kill_requested(self, slot: int) -> int:
        return self._read_full(slot)[2]

    # -- what the children run ------------------------------------------------------------

    def child_pids(self) -> list[int]:
        return sorted(self.children)

    def running(self) -> list[SlotState]:
        """The task each busy child runs now."""
        out = []
        for child in list(self.children.values()):
            _dl, _lim, _kill, mid, queue, label = self._read_full(child.slot)
            if mid:
                out.append(SlotState(child.slot, child.pid, label, mid, queue))
        return out

    def terminate(self, labels: Iterable[str], signum: int) -> list[str]:
        """Stop the children running these tasks with ``signum``; returns the labels found.

        The fate ``revoked:<signum>`` is recorded first, so the child that replaces a killed
        one reports the task as terminated instead of running it again.
        """
        wanted = set(labels)
        found = [s for s in self.running() if s.label in wanted]
        if not found:
            return []
        try:
            docket = self.make_docket()
            pipe = docket.redis.pipeline(transaction=False)
            for s in found:
                pipe.hset(
                    QueueKeys(docket.prefix, s.queue).fates,
                    s.message_id,
                    f"{REVOKED_FATE}:{signum}",
                )
            pipe.execute()
        except Exception:  # noqa: BLE001 - stopping the task matters more than the record
            log.exception("prefork: could not record the fate of %s", [s.label for s in found])
        for s in found:
            deadline, limit, _kill, mid, queue, label = self._read_full(s.slot)
            if mid != s.message_id:
                continue  # it finished meanwhile
            consumer = self._consumer_of(s.slot)
            self._write_slot(
                s.slot, deadline, limit, mid, queue, label, kill=signum, consumer=consumer
            )
            log.warning(
                "prefork: terminating %s in child %d with %s", s.label, s.pid, _signame(signum)
            )
            try:
                os.kill(s.pid, signum)
            except ProcessLookupError:
                pass
        return [s.label for s in found]

    # -- resizing -------------------------------------------------------------------------

    def grow(self, n: int = 1) -> int:
        """Start ``n`` more children (up to ``capacity``); returns how many were started."""
        started = 0
        for _ in range(max(0, n)):
            busy = {c.slot for c in self.children.values()}
            free = [i for i in range(self.capacity) if i not in busy and i not in self._retiring]
            if not free:
                log.warning("prefork: cannot grow past %d processes", self.capacity)
                break
            self.processes += 1
            self._spawn(free[0])
            started += 1
        return started

    def shrink(self, n: int = 1) -> int:
        """Ask ``n`` children (never the last one) to finish their task and exit."""
        stopped = 0
        live = sorted(
            (c for c in self.children.values() if c.slot not in self._retiring),
            key=lambda c: c.slot,
            reverse=True,
        )
        for child in live[: max(0, min(n, len(live) - 1))]:
            self._retiring.add(child.slot)
            self.processes -= 1
            try:
                os.kill(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            stopped += 1
        return stopped

    # -- children -------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        self._write_slot(slot, 0.0, 0.0, "", "")
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                _die_with_parent(parent)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                if self.on_child_start is not None:
                    self.on_child_start(slot)

                worker = self.make_worker(slot, _SlotHook(self, slot))
                worker.install_signal_handlers(child=True)
                self._obey_kill_requests(slot)
                worker.run()
            except BaseException:  # noqa: BLE001 - report and exit non-zero, never unwind into the parent's code
                log.exception("prefork: child %d crashed", slot)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = _Child(slot, pid, time.monotonic())

    def _obey_kill_requests(self, slot: int) -> None:
        """In a child: a signal the supervisor sent to terminate the running task kills the
        process (with that signal), even where the worker handles it as 'stop gracefully'."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            previous = signal.getsignal(signum)

            def handler(num: int, frame: object, previous: object = previous) -> None:
                if self._kill_requested(slot) == num:
                    signal.signal(num, signal.SIG_DFL)
                    os.kill(os.getpid(), num)
                    return
                if callable(previous):
                    previous(num, frame)
                elif previous != signal.SIG_IGN:  # SIG_DFL, or set outside Python
                    signal.signal(num, signal.SIG_DFL)
                    os.kill(os.getpid(), num)

            signal.signal(signum, handler)

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

    def _renew_for_children(self) -> None:
        """Renew the lease of each child's running task from here: a task that holds the GIL
        (a long C call) starves the child's own keeper thread, not this process. A stopped
        (SIGSTOP) or zombie child is not renewed, so its task is taken over as usual."""
        if not self.lease_seconds:
            return
        if self._renewer is None:
            self._renewer = LeaseRenewer(self.make_docket, self.lease_seconds)
        held = []
        for child in list(self.children.values()):
            _dl, _lim, _kill, mid, queue, _label = self._read_full(child.slot)
            consumer = self._consumer_of(child.slot)
            if mid and consumer and _state_of(child.pid) not in ("T", "t", "Z", "X"):
                held.append((queue, consumer, mid))
        self._renewer.renew(held)

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
            self._write_slot(child.slot, 0.0, 0.0, "", "")
            if child.slot in self._retiring:
                self._retiring.discard(child.slot)
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

        def _stop(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            if signum == signal.SIGQUIT or self._stopping:
                # cold shutdown: the running tasks are abandoned (redelivered later)
                log.warning(
                    "prefork: received %s during shutdown: cold shutdown, killing children", name
                )
                self._cold = True
                for pid in list(self.children):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            else:
                log.warning(
                    "prefork: received %s, shutting down gracefully (waits for running tasks; "
                    "%s again stops at once)",
                    name,
                    "Ctrl-C" if signum == signal.SIGINT else name,
                )
            self._stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGQUIT, _stop)
        for slot in range(self.processes):
            self._spawn(slot)
        while not self._stopping:
            self._reap()
            self._enforce_time_limits()
            self._renew_for_children()
            if self.on_poll is not None:
                try:
                    self.on_poll(self)
                except Exception:  # noqa: BLE001 - the pool must keep running
                    log.exception("prefork: poll hook failed")
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
                self._renew_for_children()  # a graceful drain may outlast the lease
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    worst = max(worst, abs(os.waitstatus_to_exitcode(status)))
                    break
                time.sleep(self.poll_interval)
            self.children.pop(pid, None)
        return 1 if self._cold else worst


class _SlotHook(Hook):
    """In a child: publish the task it runs, and that task's deadline, in its shared slot."""

    def __init__(self, supervisor: Supervisor, slot: int) -> None:
        self.supervisor = supervisor
        self.slot = slot

    def before_run(self, worker: WorkerView, delivery: Delivery) -> None:
        sup = self.supervisor
        limit = sup.time_limit(delivery) or 0.0
        deadline = time.monotonic() + limit if limit else 0.0
        try:
            label = sup.label(delivery)
        except Exception:  # noqa: BLE001 - a label is only for lookups
            label = delivery.execution_id
        sup._write_slot(
            self.slot,
            deadline,
            limit,
            delivery.message_id,
            delivery.queue,
            label,
            consumer=delivery.worker,
        )

    def after_run(self, worker: WorkerView, delivery: Delivery, outcome: Outcome) -> None:
        self.supervisor._write_slot(self.slot, 0.0, 0.0, "", "")


class LeaseRenewer:
    """Renews, every third of a lease, the entries the supervisor's children run."""

    def __init__(self, make_docket: Callable[[], Client], lease_seconds: float) -> None:
        self.make_docket = make_docket
        self.period = max(0.05, lease_seconds / 3.0)
        self.last = 0.0
        self.docket: Client | None = None
        self.script = Script(RENEW)

    def renew(self, held: list[tuple[str, str, str]]) -> None:
        now = time.monotonic()
        if not held or now - self.last < self.period:
            return
        self.last = now
        try:
            if self.docket is None:
                self.docket = self.make_docket()
            pipe = Pipeline(self.docket.redis)
            for queue, consumer, mid in held:
                stream = QueueKeys(self.docket.prefix, queue).stream
                pipe.script(self.script, [stream], [GROUP, consumer, mid])
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the children's keepers renew too
            log.warning("prefork: could not renew the children's leases (%s)", exc)


def _state_of(pid: int) -> str:
    """A process's state letter from /proc (R, S, D, T stopped, Z zombie); '' if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return ""


def _die_with_parent(parent: int) -> None:
    """In a child: exit (SIGKILL) when the supervisor dies, as a worker crash would. An
    orphan would go on consuming with no time limits and ignore the next supervisor's
    SIGTERM; its entries are taken over like any dead worker's (lease expiry, or at once by
    a restart under the same name). Linux: PR_SET_PDEATHSIG; elsewhere (and as a backstop)
    a thread that checks the parent pid every half second."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            log.warning("prefork: prctl(PR_SET_PDEATHSIG) unavailable; polling the parent")
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="docket-parent-watch", daemon=True).start()


def _signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
