"""An embedded worker for tests (Celery's ``celery.contrib.testing.worker``).

``with start_worker(app) as w:`` runs a :class:`~celery_docket.worker.WorkController` in a
background thread of the test process, checks it answers a ``celery.ping`` task, and stops
it when the block ends. Only the ``solo`` and ``threads`` pools run in a thread; asking for
``prefork`` gives a ``threads`` pool of the same concurrency, so tests written for Celery's
``celery_worker_pool = "prefork"`` still run (in-process, so their tasks see test state).
"""

from __future__ import annotations

import importlib
import inspect
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery_docket.signals import Signal
from celery_docket.worker import WorkController

__all__ = (
    "TestWorkController",
    "WORKER_LOGLEVEL",
    "anon_nodename",
    "ensure_ping_task",
    "setup_app_for_worker",
    "start_worker",
    "test_worker_started",
    "test_worker_starting",
    "test_worker_stopped",
)

#: Log level of embedded workers (Celery reads the same variable).
WORKER_LOGLEVEL = os.environ.get("WORKER_LOGLEVEL", "error")

test_worker_starting = Signal(name="test_worker_starting", providing_args=set())
test_worker_started = Signal(name="test_worker_started", providing_args={"worker", "consumer"})
test_worker_stopped = Signal(name="test_worker_stopped", providing_args={"worker"})

# Celery options that describe machinery we do not have; dropped without a word.
_CELERY_ONLY = frozenset(
    {
        "without_heartbeat",
        "without_mingle",
        "without_gossip",
        "ready_callback",
        "optimization",
        "task_events",
        "send_events",
        "state_db",
        "statedb",
        "heartbeat_interval",
        "disable_rate_limits",
        "pool_putlocks",
    }
)


def anon_nodename() -> str:
    """A node name no other embedded worker of this run uses."""
    return f"gen{os.getpid()}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"


class TestWorkController(WorkController):
    """The worker :func:`start_worker` runs, with the extra methods Celery's test worker has."""

    __test__ = False  # not a test class, though its name says so

    def ensure_started(self, timeout: float | None = None) -> None:
        """Return once the worker consumes (:meth:`start_in_thread` already waits)."""
        engine_worker = getattr(self, "_worker", None)
        ready = getattr(engine_worker, "ready", None)
        if isinstance(ready, threading.Event):
            ready.wait(timeout)

    def reload(self, modules: Any = None, reload: bool = False, reloader: Any = None) -> None:
        """Celery's ``celery_worker.reload()`` after registering tasks in a test.

        Tasks are looked up in ``app.tasks`` when each message runs, so tasks defined after
        the worker started already work; with ``modules`` those modules are imported
        (and re-imported when ``reload`` is true).
        """
        for name in modules or ():
            module = importlib.import_module(name)
            if reload:
                importlib.reload(module)


def _pong() -> str:
    return "pong"


def ensure_ping_task(app: Any) -> Any:
    """Register ``celery.ping`` (returns ``'pong'``) on ``app`` unless it has one."""
    tasks = app.tasks
    if "celery.ping" not in tasks:
        app.task(name="celery.ping", shared=False)(_pong)
    return app.tasks["celery.ping"]


def setup_app_for_worker(app: Any, loglevel: str | int, logfile: str | None) -> None:
    """Finalize ``app`` and make it the current and default app (as a worker does)."""
    finalize = getattr(app, "finalize", None)
    if finalize is not None:
        finalize()
    for name in ("set_current", "set_default"):
        method = getattr(app, name, None)
        if method is not None:
            method()


def _accepted(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The options ``factory`` takes; Celery-only ones are dropped, others warned about."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return options
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in options.items() if k not in _CELERY_ONLY}
    out = {}
    for key, value in options.items():
        if key in params:
            out[key] = value
        elif key not in _CELERY_ONLY:
            warnings.warn(
                f"start_worker: the worker does not take {key!r}; ignoring it",
                UserWarning,
                stacklevel=4,
            )
    return out


def _wait_started(worker: Any, timeout: float) -> None:
    """Block until the worker says it is consuming, when it can tell us."""
    for name in ("ensure_started", "wait_ready", "wait_started"):
        method = getattr(worker, name, None)
        if callable(method):
            try:
                method(timeout=timeout)
            except TypeError:
                method()
            return
    ready = getattr(worker, "ready", None) or getattr(worker, "started", None)
    if isinstance(ready, threading.Event):
        ready.wait(timeout)


def _stop(worker: Any, timeout: float) -> None:
    started = time.monotonic()
    stop = worker.stop
    try:
        takes_timeout = "timeout" in inspect.signature(stop).parameters
    except (TypeError, ValueError):  # pragma: no cover
        takes_timeout = False
    if takes_timeout:
        stop(timeout=timeout)
    else:
        stop()
    thread = getattr(worker, "thread", None) or getattr(worker, "_thread", None)
    if isinstance(thread, threading.Thread):
        thread.join(max(0.0, timeout - (time.monotonic() - started)))
        if thread.is_alive():
            raise RuntimeError(
                "Worker thread failed to exit within the allocated timeout. Consider raising "
                "`shutdown_timeout` if your tasks take longer to execute."
            )


@contextmanager
def _start_worker_thread(
    app: Any,
    concurrency: int = 1,
    pool: str = "solo",
    loglevel: str | int = WORKER_LOGLEVEL,
    logfile: str | None = None,
    WorkController: Any = None,  # noqa: N803 - Celery's keyword (the class to run)
    perform_ping_check: bool = True,
    shutdown_timeout: float = 10.0,
    **kwargs: Any,
) -> Iterator[Any]:
    setup_app_for_worker(app, loglevel, logfile)
    if perform_ping_check:
        ensure_ping_task(app)
    if pool in ("prefork", "processes"):
        pool = "threads"
    elif pool not in ("solo", "threads"):
        raise ValueError(
            f"start_worker runs the worker in a thread: pool must be 'solo' or 'threads', "
            f"not {pool!r}"
        )
    factory = WorkController or TestWorkController
    if isinstance(loglevel, str):
        loglevel = loglevel.upper()
    options = _accepted(
        factory,
        {
            "pool": pool,
            "concurrency": concurrency,
            "hostname": kwargs.pop("hostname", None) or anon_nodename(),
            "loglevel": loglevel,
            "logfile": logfile,
            "setup_logging": False,  # a test run keeps pytest's logging as it is
            **kwargs,
        },
    )
    worker = factory(app, **options)
    worker.start_in_thread()
    _wait_started(worker, shutdown_timeout)
    test_worker_started.send(sender=app, worker=worker, consumer=None)
    try:
        yield worker
    finally:
        _stop(worker, shutdown_timeout)


@contextmanager
def start_worker(
    app: Any,
    concurrency: int = 1,
    pool: str = "solo",
    loglevel: str | int = WORKER_LOGLEVEL,
    logfile: str | None = None,
    perform_ping_check: bool = True,
    ping_task_timeout: float = 10.0,
    shutdown_timeout: float = 10.0,
    **kwargs: Any,
) -> Iterator[Any]:
    """Run a worker for ``app`` in a background thread for the duration of the block.

    With ``perform_ping_check`` a ``celery.ping`` task is registered if needed, sent and
    awaited (up to ``ping_task_timeout`` seconds) before the block starts, so the block only
    runs once the worker really consumes. The worker gets ``shutdown_timeout`` seconds to
    stop afterwards. Extra keyword arguments go to the WorkController (e.g. ``queues``).

    Yields:
        the running WorkController.
    """
    test_worker_starting.send(sender=app)
    worker = None
    try:
        with _start_worker_thread(
            app,
            concurrency=concurrency,
            pool=pool,
            loglevel=loglevel,
            logfile=logfile,
            perform_ping_check=perform_ping_check,
            shutdown_timeout=shutdown_timeout,
            **kwargs,
        ) as worker:
            if perform_ping_check:
                ping = ensure_ping_task(app)
                queues = kwargs.get("queues")
                if isinstance(queues, str):
                    queues = [q.strip() for q in queues.split(",") if q.strip()]
                options = {"queue": queues[0]} if queues else {}
                reply = ping.apply_async(**options).get(timeout=ping_task_timeout)
                assert reply == "pong", f"celery.ping answered {reply!r}"
            yield worker
    finally:
        test_worker_stopped.send(sender=app, worker=worker)
