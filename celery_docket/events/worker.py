"""Task and worker events from a worker started with ``-E`` (``worker_send_task_events``).

Task events come from our signals, the seam every integration uses: receivers are
connected only when events are on, so a worker without ``-E`` runs exactly the code it
ran before (no per-task check at all). The receivers are connected in the worker's main
process before a prefork pool forks, so children inherit them; each process publishes
with its own Redis connection (redis-py reconnects after a fork).

:class:`NodeAgent` is one thread per worker node (in the threads/solo worker, or in
prefork child 0, restarted with it): it sends ``worker-online``, a ``worker-heartbeat``
every ``freq`` seconds with the node's active and processed counts as Redis knows them
(the whole node's, whichever child runs the agent), ``worker-offline`` when stopped, and
answers real Celery's inspect broadcasts (:mod:`.pidbox`) so Flower lists the worker.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from typing import Any

from .. import signals
from ..protocol import saferepr
from .dispatcher import SW_IDENT, EventDispatcher

log = logging.getLogger("celery.worker.events")

_UID = "celery_docket.events.worker"
HEARTBEAT_FREQ = 2.0
"""Seconds between two ``worker-heartbeat`` events (Celery's default)."""
RECONNECT_SECONDS = 5.0
"""Wait before the pidbox node tries the broker again after losing it."""

_dispatcher: EventDispatcher | None = None


def enabled(app: Any) -> bool:
    return bool(app.conf.get("worker_send_task_events"))


def _task_id(sender: Any, request: Any = None) -> Any:
    request = request if request is not None else getattr(sender, "request", None)
    return getattr(request, "id", None)


def _received(sender: Any = None, request: Any = None, **kw: Any) -> None:
    if _dispatcher is None or request is None:
        return
    argsrepr = getattr(request, "argsrepr", None)
    kwargsrepr = getattr(request, "kwargsrepr", None)
    _dispatcher.send(
        "task-received",
        uuid=request.id,
        name=request.task,
        args=argsrepr if argsrepr is not None else saferepr(request.args),
        kwargs=kwargsrepr if kwargsrepr is not None else saferepr(request.kwargs),
        root_id=getattr(request, "root_id", None),
        parent_id=getattr(request, "parent_id", None),
        retries=getattr(request, "retries", 0) or 0,
        eta=getattr(request, "eta", None),
        expires=getattr(request, "expires", None),
    )


def _started(sender: Any = None, task_id: Any = None, **kw: Any) -> None:
    if _dispatcher is not None:
        _dispatcher.send("task-started", uuid=task_id)


def _succeeded(sender: Any = None, result: Any = None, runtime: Any = None, **kw: Any) -> None:
    if _dispatcher is not None:
        _dispatcher.send(
            "task-succeeded", uuid=_task_id(sender), result=saferepr(result), runtime=runtime
        )


def _failed(
    sender: Any = None, task_id: Any = None, exception: Any = None, einfo: Any = None, **kw: Any
) -> None:
    if _dispatcher is not None:
        _dispatcher.send(
            "task-failed",
            uuid=task_id,
            exception=saferepr(exception),
            traceback=getattr(einfo, "traceback", None),
        )


def _retried(
    sender: Any = None, request: Any = None, reason: Any = None, einfo: Any = None, **kw: Any
) -> None:
    if _dispatcher is not None:
        _dispatcher.send(
            "task-retried",
            uuid=_task_id(sender, request),
            exception=saferepr(reason),
            traceback=getattr(einfo, "traceback", None),
        )


def _revoked(
    sender: Any = None,
    request: Any = None,
    terminated: Any = False,
    signum: Any = None,
    expired: Any = False,
    **kw: Any,
) -> None:
    if _dispatcher is not None:
        _dispatcher.send(
            "task-revoked",
            uuid=_task_id(sender, request),
            terminated=bool(terminated),
            signum=int(signum) if signum is not None else None,
            expired=bool(expired),
        )


def _rejected(sender: Any = None, **kw: Any) -> None:
    if _dispatcher is not None and hasattr(sender, "request"):
        _dispatcher.send("task-rejected", uuid=_task_id(sender), requeue=False)


_RECEIVERS = (
    (signals.task_received, _received),
    (signals.task_prerun, _started),
    (signals.task_success, _succeeded),
    (signals.task_failure, _failed),
    (signals.task_retry, _retried),
    (signals.task_revoked, _revoked),
    (signals.task_rejected, _rejected),
)


def install(app: Any, hostname: str) -> EventDispatcher:
    """Publish task events for ``hostname`` from now on (idempotent)."""
    global _dispatcher
    _dispatcher = EventDispatcher(app=app, hostname=hostname, buffer_group=["task"])
    for sig, receiver in _RECEIVERS:
        sig.connect(receiver, weak=False, dispatch_uid=_UID)
    return _dispatcher


def uninstall() -> None:
    global _dispatcher
    for sig, receiver in _RECEIVERS:
        sig.disconnect(receiver, dispatch_uid=_UID)
    if _dispatcher is not None:
        _dispatcher.disable()  # publishes what it holds, ends its flusher thread
    _dispatcher = None


def flush() -> None:
    """Publish the task events this process holds (before it exits)."""
    if _dispatcher is not None:
        _dispatcher.flush()


def worker_fields(app: Any, hostname: str) -> dict[str, Any]:
    """``freq``, ``active``, ``processed``, ``loadavg`` and the software fields."""
    from .. import __version__
    from ..control import live_nodes

    active = processed = 0
    try:
        node = live_nodes(app, [hostname]).get(hostname)
    except Exception as exc:  # noqa: BLE001 - a heartbeat goes out even when Redis hiccups
        log.debug("cannot read node %s: %s", hostname, exc)
        node = None
    if node is not None:
        active, processed = len(node.active), int(node.processed or 0)
    try:
        loadavg = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on this platform
        loadavg = [0.0, 0.0, 0.0]
    return {
        "freq": HEARTBEAT_FREQ,
        "active": active,
        "processed": processed,
        "loadavg": loadavg,
        "sw_ident": SW_IDENT,
        "sw_ver": __version__,
        "sw_sys": platform.system(),
    }


class NodeAgent:
    """Worker heartbeats as events, and the Celery pidbox node, on one daemon thread."""

    def __init__(self, app: Any, hostname: str, *, heartbeats: bool = True) -> None:
        self.app = app
        self.hostname = hostname
        self.heartbeats = heartbeats
        self.dispatcher = EventDispatcher(app=app, hostname=hostname)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> NodeAgent:
        self._thread = threading.Thread(target=self._run, name="celery-docket-events", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def send_worker(self, kind: str) -> None:
        if self.heartbeats:
            self.dispatcher.send(f"worker-{kind}", **worker_fields(self.app, self.hostname))

    def _responder(self) -> Any:
        from .pidbox import PidboxResponder

        url = kombu_url_of(self.app)
        if url is None:
            return None
        try:
            return PidboxResponder(self.app, self.hostname, url)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot answer Celery's inspect broadcasts: %s", exc)
            return None

    def _run(self) -> None:
        answers = kombu_url_of(self.app) is not None
        responder = self._responder() if answers else None
        retry_at = time.monotonic() + RECONNECT_SECONDS
        self.send_worker("online")
        next_beat = time.monotonic() + HEARTBEAT_FREQ
        try:
            while not self._stop.is_set():
                wait = max(0.0, min(0.5, next_beat - time.monotonic()))
                if responder is not None:
                    try:
                        responder.drain(wait)
                    except Exception as exc:  # noqa: BLE001 - reconnect a little later
                        log.warning("pidbox: %s (reconnecting)", exc)
                        _close(responder)
                        responder, retry_at = None, time.monotonic() + RECONNECT_SECONDS
                else:
                    self._stop.wait(wait)
                    if answers and time.monotonic() >= retry_at:
                        responder = self._responder()
                        retry_at = time.monotonic() + RECONNECT_SECONDS
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + HEARTBEAT_FREQ
                    self.send_worker("heartbeat")
        finally:
            if responder is not None:
                _close(responder)
            self.send_worker("offline")


def kombu_url_of(app: Any) -> str | None:
    from .pidbox import kombu_url

    return kombu_url(str(app.broker_url))


def _close(responder: Any) -> None:
    try:
        responder.close()
    except Exception:  # its connection is gone already
        log.debug("closing the pidbox connection failed", exc_info=True)
