"""The worker end of remote control: control notices, and what the heartbeat tells inspect.

``WorkerMailbox`` is a thread next to each engine worker (the threads/solo worker, or each
prefork child). It subscribes to the control channel, keeps the process's ``RevokedSet`` up
to date, applies the commands that concern it and refreshes the heartbeat soon after a task
starts or ends (at most twice a second), so ``inspect active`` is fresh without a Redis call
per task. ``SupervisorMailbox`` is polled from the prefork supervisor's loop (no thread in
a process that forks): it terminates tasks, resizes the pool, stops it, and applies setting
changes so children started later inherit them.

``Activity`` records what the handler runs (Celery's TASK_INFO of each running task) and
the per-task-name totals that ``inspect stats`` shows.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from ..control.shapes import message_info
from ..engine import Worker
from ..keys import control_channel, revoked_signals_key
from .revoke import RESYNC_SECONDS, RevokedSet

log = logging.getLogger("celery.worker.control")

_RECOVERABLE = (redis.ConnectionError, redis.TimeoutError, OSError)
HB_LIMIT = 1024
"""Largest JSON size of a task's args (or kwargs) put in a heartbeat; beyond, the repr."""
PUSH_INTERVAL = 0.2
"""Least time between two heartbeats written because tasks started or ended."""


class Activity:
    """What one engine worker's handler runs now, and how many tasks of each name ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, dict[str, Any] | Callable[[], dict[str, Any]]] = {}
        self._reserved: dict[str, dict[str, Any] | None] = {}
        self.total: dict[str, int] = {}
        self.changed = threading.Event()

    def started(self, task_id: str, info: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Record a task that starts now; ``info`` may be a function that builds its
        TASK_INFO, called only if someone asks (a heartbeat, ``inspect active``)."""
        with self._lock:
            self._active[task_id] = info
        self.changed.set()

    def finished(self, task_id: str, name: str) -> None:
        with self._lock:
            self._active.pop(task_id, None)
            self.total[name] = self.total.get(name, 0) + 1
        self.changed.set()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._active.items())
        out = []
        for task_id, info in items:
            if callable(info):
                info = info()
                with self._lock:
                    if task_id in self._active:
                        self._active[task_id] = info  # built once, kept while it runs
            out.append(info)
        return out

    def active_ids(self) -> set[str]:
        with self._lock:
            return set(self._active)

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self.total)

    def reserved(self, app: Any, worker: Worker, hostname: str) -> list[dict[str, Any]]:
        """TASK_INFO of the deliveries held but not started (decoded once per message)."""
        held = [d for d, started in worker.deliveries() if started is None]
        with self._lock:
            known = dict(self._reserved)
        fresh = {
            d.message_id: known[d.message_id]
            if d.message_id in known
            else message_info(
                app, d.body, d.queue, hostname, redelivered=d.delivery_count > 1, limit=HB_LIMIT
            )
            for d in held
        }
        with self._lock:
            self._reserved = fresh
        return [info for info in fresh.values() if info is not None]


def rusage() -> dict[str, Any]:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on this platform
        return {}
    s = resource.getrusage(resource.RUSAGE_SELF)
    return {
        name: getattr(s, f"ru_{name}")
        for name in (
            "utime",
            "stime",
            "maxrss",
            "ixrss",
            "idrss",
            "isrss",
            "minflt",
            "majflt",
            "nswap",
            "inblock",
            "oublock",
            "msgsnd",
            "msgrcv",
            "nsignals",
            "nvcsw",
            "nivcsw",
        )
    }


_TASK_ATTRS = (
    "rate_limit",
    "max_retries",
    "default_retry_delay",
    "time_limit",
    "soft_time_limit",
    "acks_late",
    "ignore_result",
    "serializer",
    "queue",
    "priority",
    "exchange",
    "routing_key",
    "track_started",
)


def task_attrs(app: Any) -> dict[str, dict[str, str]]:
    """Attributes ``inspect registered <attr>...`` can show, per task (non-None only)."""
    out: dict[str, dict[str, str]] = {}
    for name, task in list(app._tasks.items()):
        attrs = {}
        for attr in _TASK_ATTRS:
            value = getattr(task, attr, None)
            if value is not None and not callable(value):
                attrs[attr] = str(value)
        out[name] = attrs
    return out


def _wanted(notice: dict[str, Any], hostname: str) -> bool:
    destination = notice.get("destination")
    return not destination or hostname in destination


def apply_time_limit(app: Any, args: dict[str, Any]) -> None:
    name = args.get("task_name")
    task = app._tasks.get(name)
    if task is None:
        log.error("Change time limit attempt for unknown task %s", name)
        return
    task.soft_time_limit = args.get("soft")
    task.time_limit = args.get("hard")
    log.info(
        "New time limits for tasks of type %s: soft=%s hard=%s",
        name,
        args.get("soft"),
        args.get("hard"),
    )


class WorkerMailbox:
    """Control notices for one engine worker of a worker node (see the module doc)."""

    def __init__(
        self,
        controller: Any,
        worker: Worker,
        handler: Any,
        *,
        child: bool = False,
    ) -> None:
        self.controller = controller
        self.app = controller.app
        self.worker = worker
        self.handler = handler
        self.revoked: RevokedSet = handler.revoked
        self.activity: Activity = handler.activity
        self.child = child
        self.hostname = str(controller.hostname)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub: Any = None
        self._pusher: threading.Thread | None = None
        self._last_push = 0.0

    # -- lifecycle

    def start(self) -> WorkerMailbox:
        """Subscribe, then load the revoked ids (in that order: no revoke falls between),
        then listen in a thread. Call before the worker runs."""
        try:
            self._connect()
        except _RECOVERABLE as exc:
            log.warning("control: Redis unavailable (%s); revocations load when it returns", exc)
        self._thread = threading.Thread(target=self._loop, name="docket-control", daemon=True)
        self._thread.start()
        self._pusher = threading.Thread(
            target=self._push_loop, name="docket-heartbeat-push", daemon=True
        )
        self._pusher.start()
        return self

    def stop(self) -> None:
        """Stop both threads (the listener notices within a quarter of a second and
        closes its connection; nothing waits for it)."""
        self._stop.set()
        self.activity.changed.set()

    def join(self, timeout: float | None = None) -> None:
        for thread in (self._thread, self._pusher):
            if thread is not None:
                thread.join(timeout)

    def _connect(self) -> None:
        pubsub = self.app.docket.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(control_channel(self.app.docket.prefix))
            self.revoked.sync()
        except BaseException:
            pubsub.close()
            raise
        self._pubsub = pubsub
        self._drain_signals()

    def _close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._pubsub = None

    def _finished(self) -> bool:
        return self._stop.is_set() or self.worker.stopped

    def _loop(self) -> None:
        while not self._finished():
            try:
                if self._pubsub is None:
                    self._connect()
                message = self._pubsub.get_message(timeout=0.25)
                if message is not None and message.get("type") == "message":
                    self._handle_raw(message.get("data"))
                if time.monotonic() - self.revoked.synced_at > RESYNC_SECONDS:
                    self.revoked.sync()
                    self._drain_signals()
            except _RECOVERABLE as exc:
                if self._finished():
                    break  # the app closed its connections on the way out
                log.warning("control: lost Redis (%s); reconnecting", exc)
                self._close()
                self._stop.wait(1.0)
            except Exception:
                if self._finished():
                    break
                log.exception("control: listener failed; continuing")
                self._stop.wait(0.5)
        self._close()

    def _push_loop(self) -> None:
        """Rewrite the heartbeat as soon as a task starts or ends (then at most every
        PUSH_INTERVAL), so ``inspect active`` shows a task a few milliseconds after it
        starts. Not while stopping: a late write would resurrect the key the worker deletes
        on its way out."""
        changed = self.activity.changed
        while not self._finished():
            if not changed.wait(0.5):
                continue
            wait = self._last_push + PUSH_INTERVAL - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
            changed.clear()
            if self.worker.stopping or not self.worker.ready.is_set():
                continue
            try:
                self.worker.beat_heart()
            except _RECOVERABLE as exc:
                log.warning("control: could not write the heartbeat (%s)", exc)
                self._stop.wait(1.0)
            except Exception:
                log.exception("control: heartbeat failed")
            self._last_push = time.monotonic()

    # -- notices

    def _handle_raw(self, data: Any) -> None:
        try:
            notice = json.loads(data)
        except (TypeError, ValueError):
            log.warning("control: ignoring a malformed notice %r", data)
            return
        if isinstance(notice, dict):
            self.handle(notice)

    def handle(self, notice: dict[str, Any]) -> None:
        cmd = notice.get("cmd")
        args = notice.get("args") or {}
        if cmd == "revoke":
            # The revocation itself is global (stored in Redis for every worker).
            ids = [str(i) for i in args.get("ids") or ()]
            self.revoked.add(ids, int(args.get("expires_ms") or 0))
            log.info("Tasks flagged as revoked: %s", ", ".join(ids))
            if args.get("signals"):
                self._drain_signals()
            if args.get("terminate") and not self.child and _wanted(notice, self.hostname):
                running = self.activity.active_ids() & set(ids)
                for task_id in sorted(running):
                    log.warning(
                        "Cannot terminate %s: the %s pool cannot interrupt a running task. It "
                        "runs to its end and is never retried or redelivered.",
                        task_id,
                        self.worker.settings.pool,
                    )
            return
        if not _wanted(notice, self.hostname):
            return
        if cmd == "time_limit":
            apply_time_limit(self.app, args)
        elif cmd == "add_consumer":
            queue = str(args["queue"])
            self.worker.add_queue(queue)
            if not self.child and queue not in self.controller.queues:
                self.controller.queues.append(queue)
            log.info("Started consuming from %s", queue)
            self.worker.beat_heart()
        elif cmd == "cancel_consumer":
            queue = str(args["queue"])
            self.worker.pause_queue(queue)
            if not self.child and queue in self.controller.queues:
                self.controller.queues.remove(queue)
            log.info("Stopped consuming from %s", queue)
            self.worker.beat_heart()
        elif cmd == "heartbeat":
            self.worker.beat_heart()
        elif cmd == "shutdown" and not self.child:
            log.warning("Got shutdown from remote")
            self.worker.stop()
        # pool_grow/pool_shrink and the prefork parts of shutdown/terminate belong to the
        # supervisor (SupervisorMailbox)

    def _drain_signals(self) -> None:
        """Announce ``task_revoked`` for revoked executions the client removed from the
        engine (parked, or keyed and queued): each is taken by exactly one worker."""
        key = revoked_signals_key(self.app.docket.prefix)
        r = self.app.docket.redis
        while True:
            pipe = r.pipeline(transaction=True)
            pipe.lrange(key, 0, 99)
            pipe.ltrim(key, 100, -1)
            items, _ = pipe.execute()
            if not items:
                return
            for raw in items:
                try:
                    entry = json.loads(raw)
                    body = base64.b64decode(entry["body"])
                    self.handler.announce_removed(body, str(entry.get("queue") or ""))
                except Exception:  # one bad entry must not stop the rest
                    log.exception("control: could not announce a revoked task")
            if len(items) < 100:
                return


class SupervisorMailbox:
    """Control notices for a prefork supervisor, polled from its loop (no thread)."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.app = controller.app
        self.hostname = str(controller.hostname)
        self._pubsub: Any = None
        self._retry_at = 0.0

    def __call__(self, supervisor: Any) -> None:
        if self._pubsub is None:
            if time.monotonic() < self._retry_at:
                return
            try:
                pubsub = self.app.docket.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(control_channel(self.app.docket.prefix))
                self._pubsub = pubsub
            except _RECOVERABLE as exc:
                log.warning("control: supervisor cannot reach Redis (%s)", exc)
                self._retry_at = time.monotonic() + 2.0
                return
        try:
            for _ in range(100):
                message = self._pubsub.get_message(timeout=0)
                if message is None:
                    return
                if message.get("type") != "message":
                    continue
                try:
                    notice = json.loads(message.get("data"))
                except (TypeError, ValueError):
                    continue
                if isinstance(notice, dict):
                    self.handle(notice, supervisor)
        except _RECOVERABLE as exc:
            log.warning("control: supervisor lost Redis (%s)", exc)
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._pubsub = None
            self._retry_at = time.monotonic() + 1.0

    def handle(self, notice: dict[str, Any], supervisor: Any) -> None:
        if not _wanted(notice, self.hostname):
            return
        cmd = notice.get("cmd")
        args = notice.get("args") or {}
        if cmd == "revoke" and args.get("terminate"):
            ids = [str(i) for i in args.get("ids") or ()]
            signum = int(args.get("signum") or 15)
            done = supervisor.terminate(ids, signum)
            if done:
                log.info("Terminated %s (%s)", ", ".join(done), signum)
        elif cmd == "time_limit":
            apply_time_limit(self.app, args)
        elif cmd == "add_consumer":
            queue = str(args["queue"])
            if queue not in self.controller.queues:
                self.controller.queues.append(queue)
        elif cmd == "cancel_consumer":
            queue = str(args["queue"])
            if queue in self.controller.queues:
                self.controller.queues.remove(queue)
        elif cmd == "pool_grow":
            started = supervisor.grow(int(args.get("n") or 1))
            log.info("pool: started %d more processes (now %d)", started, supervisor.processes)
        elif cmd == "pool_shrink":
            stopped = supervisor.shrink(int(args.get("n") or 1))
            log.info("pool: stopping %d processes (now %d)", stopped, supervisor.processes)
        elif cmd == "shutdown":
            log.warning("Got shutdown from remote")
            supervisor.stop()

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001
                pass
            self._pubsub = None
