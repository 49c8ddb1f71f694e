"""The worker of a Celery app: Celery's startup, logging and signals over the engine worker."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import socket
import sys
import threading
import time
from datetime import datetime
from typing import Any

from ..app import lifecycle
from ..contrib import integrations
from ..engine import Delivery, Hook, Outcome, PerpetualSpec, Worker, WorkerSettings
from ..keys import static_key
from ..utils.urls import redact_url
from .beat import BeatPlanner
from .handler import CeleryHandler
from .hooks import Bookkeeping, Ready
from .mailbox import Activity, SupervisorMailbox, WorkerMailbox, rusage, task_attrs
from .revoke import RevokedSet

log = logging.getLogger("celery.worker")

__all__ = ["WorkController"]


def expand_hostname(hostname: str | None) -> str:
    """Celery's ``-n`` expansion: %h host, %n name part, %d domain; default celery@host."""
    host = socket.gethostname()
    name, _, domain = host.partition(".")
    value = hostname or "celery@%h"
    value = value.replace("%h", host).replace("%n", name).replace("%d", domain)
    if "@" not in value:
        value = f"celery@{value}"
    return value


class WorkController:
    """``celery-docket worker``: pools prefork (default), threads, solo."""

    def __init__(
        self,
        app: Any,
        pool: str | None = "prefork",
        concurrency: int | None = None,
        queues: list[str] | str | None = None,
        hostname: str | None = None,
        loglevel: str | int = "WARNING",
        max_tasks_per_child: int | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        beat: bool = False,
        logfile: str | None = None,
        prefetch_multiplier: int | None = None,
        setup_logging: bool = True,
        **options: Any,
    ) -> None:
        self.app = app
        conf = app.conf
        self.pool = (pool or conf.get("worker_pool") or "prefork").lower()
        if self.pool not in ("prefork", "threads", "solo"):
            raise ValueError(f"pool {self.pool!r} is not supported (use prefork, threads or solo)")
        if self.pool == "prefork" and app.broker_url.startswith("memory"):
            log.warning("memory:// lives in one process: using the threads pool instead of prefork")
            self.pool = "threads"
        self.concurrency = int(concurrency or conf.get("worker_concurrency") or os.cpu_count() or 1)
        if isinstance(queues, str):
            queues = [q.strip() for q in queues.split(",") if q.strip()]
        # queues=[] (explicitly empty) is the scheduler-only mode of `celery-docket beat`:
        # move due work and keep beat entries alive, run nothing
        self.scheduler_only = queues is not None and len(queues) == 0
        if self.scheduler_only:
            planner = BeatPlanner(app)
            queues = sorted({planner.queue_of(e) for e in planner.entries().values()})
        if not queues:
            queues = _configured_queues(conf)
        self.queues = list(queues)
        self.hostname = expand_hostname(hostname)
        self.loglevel = loglevel
        self.max_tasks_per_child = max_tasks_per_child or conf.get("worker_max_tasks_per_child")
        self.time_limit = time_limit
        self.soft_time_limit = soft_time_limit
        self.logfile = logfile
        self.prefetch_multiplier = int(
            prefetch_multiplier or conf.get("worker_prefetch_multiplier") or 4
        )
        self.setup_logging_enabled = setup_logging
        self._worker: Worker | None = None
        self._thread: threading.Thread | None = None
        self._mailbox: WorkerMailbox | None = None
        self._static_written: dict[str, float] = {}
        self.beat = BeatPlanner(app)

    # -- presentation -----------------------------------------------------------------------

    def banner(self) -> str:
        app = self.app
        tasks = sorted(n for n in app.tasks if not n.startswith("celery."))
        from .. import __version__

        lines = [
            "",
            f" -------------- {self.hostname} v{__version__} (celery-docket)",
            f"--- ***** ----- {platform.platform()} {datetime.now():%Y-%m-%d %H:%M:%S}",
            "-- ******* ---- ",
            "- *** --- * --- [config]",
            f"- ** ---------- .> app:         {app.main or '__main__'}:{id(app):#x}",
            f"- ** ---------- .> transport:   {redact_url(app.broker_url)}",
            f"- ** ---------- .> results:     {redact_url(str(app.conf.result_backend or app.broker_url))}",
            f"- *** --- * --- .> concurrency: {self.concurrency} ({self.pool})",
            "-- ******* ---- .> task events: "
            + (
                "ON"
                if app.conf.get("worker_send_task_events")
                else "OFF (enable -E to monitor tasks in this worker)"
            ),
            "--- ***** ----- ",
            " -------------- [queues]",
        ]
        lines += [f"                .> {q:<15} exchange={q}(direct) key={q}" for q in self.queues]
        lines += ["", "[tasks]"] + [f"  . {t}" for t in tasks] + [""]
        return "\n".join(lines)

    def setup_logging(self) -> None:
        level = self.loglevel
        if isinstance(level, str):
            level = logging.getLevelName(level.upper())
        if lifecycle.logging_taken_over(level, self.logfile):
            return
        if self.app.conf.get("worker_hijack_root_logger", True):
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)
            stream: Any = open(self.logfile, "a") if self.logfile else sys.stderr  # noqa: SIM115
            self._install_log_handlers(stream, level)
        lifecycle.logging_set_up(level, self.logfile)

    def _install_log_handlers(self, stream: Any, level: int) -> None:
        """Celery's two formats: ``worker_log_format`` on the root logger, and
        ``worker_task_log_format`` (``task_name[task_id]:``) on ``celery.task``, whose
        records get their own handler instead of propagating, as in Celery."""
        from .. import _state
        from ..utils.log import ColorFormatter, TaskFormatter, set_current_task_getter

        conf = self.app.conf
        color = conf.get("worker_log_color")
        if color is None:
            color = not self.logfile and bool(getattr(stream, "isatty", lambda: False)())
        root = logging.getLogger()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(ColorFormatter(conf.get("worker_log_format"), use_color=color))
        root.addHandler(handler)
        root.setLevel(level)
        set_current_task_getter(_state.get_current_task)
        task_logger = logging.getLogger("celery.task")
        for old in list(task_logger.handlers):
            if getattr(old, "_celery_docket_task_handler", False):
                task_logger.removeHandler(old)
        task_handler = logging.StreamHandler(stream)
        task_handler._celery_docket_task_handler = True  # type: ignore[attr-defined]
        task_handler.setFormatter(
            TaskFormatter(conf.get("worker_task_log_format"), use_color=color)
        )
        task_logger.addHandler(task_handler)
        task_logger.propagate = False
        task_logger.setLevel(level)

    # -- engine wiring --------------------------------------------------------------------

    def _handler(self) -> CeleryHandler:
        docket = self.app.docket
        return CeleryHandler(
            self.app,
            self.hostname,
            self.soft_time_limit,
            self.time_limit,
            revoked=RevokedSet(docket.redis, docket.prefix),
            activity=Activity(),
        )

    def _make_worker(
        self, name: str, pool: str, concurrency: int, *, slot: int | None = None
    ) -> Worker:
        app = self.app
        conf = app.conf
        handler = self._handler()
        beat = self.beat

        def handle(d: Delivery) -> Outcome:
            if d.perpetual and d.execution_id.startswith("beat:") and not beat.should_run(d):
                return Outcome.done(None)  # a database row disabled since: not run again
            outcome = handler(d)
            if d.perpetual and d.execution_id.startswith("beat:"):
                return beat.after_run(d, outcome)
            return outcome

        lease = self._lease_seconds()
        settings = WorkerSettings(
            queues=self.queues,
            name=name,
            pool=pool,  # type: ignore[arg-type]
            concurrency=concurrency,
            prefetch=max(1, self.prefetch_multiplier * concurrency),
            lease_seconds=lease,
            max_deliveries=int(conf.get("docket_max_deliveries") or 5),
            max_tasks=int(self.max_tasks_per_child or 0),
            consume=not self.scheduler_only,
        )
        perpetuals: list[PerpetualSpec] = self.beat.perpetuals(self.queues)
        worker = Worker(
            app.docket,
            handle,
            settings,
            perpetuals=perpetuals,
            hooks=[Bookkeeping()],
            acks_early=handler.acks_early,
            give_up=handler.give_up,
        )
        self.beat.attach(worker, self.queues)
        child = slot is not None
        worker.heartbeat_extra = lambda: self._heartbeat_extra(worker, handler, slot)
        self._mailbox = WorkerMailbox(self, worker, handler, child=child)
        return worker

    def _heartbeat_extra(
        self, worker: Worker, handler: CeleryHandler, slot: int | None
    ) -> dict[str, Any]:
        """What inspect needs beyond the engine's own heartbeat fields."""
        app = self.app
        hard = self.time_limit or app.conf.get("task_time_limit")
        soft = self.soft_time_limit or app.conf.get("task_soft_time_limit")
        activity = handler.activity
        return {
            "hostname": self.hostname,
            "main_pid": os.getppid() if slot is not None else os.getpid(),
            "pool_kind": "prefork" if slot is not None else self.pool,
            "slot": slot,
            "max_tasks_per_child": self.max_tasks_per_child,
            "prefetch_count": worker.settings.batch_size(),
            "timeouts": [soft or 0, hard or 0],
            "static": self._static_info(),
            "active_tasks": activity.active(),
            "reserved_tasks": activity.reserved(app, worker, self.hostname),
            "total": activity.totals(),
            "rusage": rusage(),
        }

    def _static_info(self) -> str:
        """Registered tasks and their attributes change rarely: they are stored once under
        a digest (refreshed every 30 s) and the heartbeat carries only the digest."""
        app = self.app
        blob = json.dumps(
            {"registered": sorted(list(app._tasks)), "task_attrs": task_attrs(app)},
            sort_keys=True,
        )
        digest = hashlib.sha1(blob.encode()).hexdigest()[:16]
        now = time.monotonic()
        if now - self._static_written.get(digest, -1e9) > 30:
            app.docket.redis.set(static_key(app.docket.prefix, digest), blob, ex=3600)
            self._static_written = {digest: now}
        return digest

    def _prepare(self) -> None:
        app = self.app
        lifecycle.worker_configured(self, self.hostname, app.conf)
        app.loader_import_modules()
        app.finalize()
        warn_long_lease(app.conf)
        lifecycle.worker_init(self)
        integrations.autoload()
        integrations.attach_worker(self)
        from ..cutover.intake import attach  # warns about Celery's backlog; --celery-intake

        self.celery_intake = attach(self)

    def start(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code."""
        if self.setup_logging_enabled:
            self.setup_logging()
        self._prepare()
        if self.pool == "prefork":
            return self._run_prefork()
        worker = self._make_worker(self.hostname, self.pool, self.concurrency)
        self._worker = worker
        mailbox = self._mailbox
        worker.install_signal_handlers()
        lifecycle.process_init()
        integrations.autoload()  # tracing is often set up in worker_process_init
        self._on_ready(worker)
        if mailbox is not None:
            mailbox.start()
        agent = integrations.node_agent(self)
        try:
            worker.run()
        finally:
            if mailbox is not None:
                mailbox.stop()
            if agent is not None:
                agent.stop()
            lifecycle.process_shutdown(0)
            lifecycle.worker_shutdown(self)
        return 0

    def _on_ready(self, worker: Worker | None) -> None:
        def announce() -> None:
            log.info("%s ready.", self.hostname)
            lifecycle.worker_ready(self)

        if worker is None:
            announce()
        else:
            worker.hooks.add(Ready(announce))

    def _lease_seconds(self) -> float:
        """An explicit docket_lease_seconds wins; else Celery's visibility_timeout; else 30 s."""
        conf = self.app.conf
        visibility = (conf.get("broker_transport_options") or {}).get("visibility_timeout")
        if conf.value_set_for("docket_lease_seconds") or not visibility:
            return float(conf.get("docket_lease_seconds") or 30)
        return float(visibility)

    def _run_prefork(self) -> int:
        from ..engine.prefork import Supervisor

        app = self.app
        self.app.docket.close()
        app._reset_connections()
        handler = self._handler()

        def make_child(slot: int, slot_hook: Hook) -> Worker:
            app._reset_connections()
            worker = self._make_worker(f"{self.hostname}-{slot}", "solo", 1, slot=slot)
            worker.hooks.add(slot_hook)
            if self._mailbox is not None:
                self._mailbox.start()
            integrations.prefork_child(self, worker, slot)
            return worker

        def child_started(slot: int) -> None:
            # log lines say which child wrote them, as Celery's ForkPoolWorker-N do
            import multiprocessing

            multiprocessing.current_process().name = f"ForkPoolWorker-{slot + 1}"
            lifecycle.process_init()

        integrations.autoload()  # tracing is often set up in worker_process_init

        mailbox = SupervisorMailbox(self)
        supervisor = Supervisor(
            make_child,
            self.concurrency,
            make_docket=lambda: app.docket,
            time_limit=handler.hard_limit_of,
            on_child_start=child_started,
            on_child_exit=lambda _slot, code: lifecycle.process_shutdown(code),
            label=handler.task_id_of,
            on_poll=mailbox,
            lease_seconds=self._lease_seconds(),
        )
        self._on_ready(None)
        try:
            return supervisor.run()
        finally:
            mailbox.close()
            integrations.worker_offline(self)
            lifecycle.worker_shutdown(self)

    # -- in-process use (tests) ---------------------------------------------------------------

    def start_in_thread(self) -> WorkController:
        """Run a threads/solo consumer in a background thread (tests, embedded use)."""
        if self.pool == "prefork":
            self.pool = "threads"
        self._prepare()
        worker = self._make_worker(self.hostname, self.pool, self.concurrency)
        self._worker = worker
        mailbox = self._mailbox
        self._on_ready(worker)
        if mailbox is not None:
            mailbox.start()
        self._agent = integrations.node_agent(self)

        def run() -> None:
            try:
                worker.run()
            finally:
                if mailbox is not None:
                    mailbox.stop()

        self._thread = threading.Thread(target=run, name="celery-docket-worker", daemon=True)
        self._thread.start()
        if not worker.ready.wait(30):
            raise RuntimeError("worker did not start within 30 s")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._mailbox is not None:
            self._mailbox.stop()
        agent, self._agent = getattr(self, "_agent", None), None
        if agent is not None:
            agent.stop()
        integrations.detach_worker(self)
        lifecycle.worker_shutdown(self)


#: a lease from visibility_timeout longer than this is warned about at start-up
LONG_LEASE_SECONDS = 300.0


def warn_long_lease(conf: Any) -> str | None:
    """Warn (one line) when a carried-over ``visibility_timeout`` makes a long lease.

    In Celery it bounds how long a task may run before redelivery; here it is how long a
    dead worker's tasks wait before another worker takes them, so 43200 means 12 hours.
    """
    if conf.value_set_for("docket_lease_seconds"):
        return None
    visibility: Any = (conf.get("broker_transport_options") or {}).get("visibility_timeout")
    try:
        seconds = float(visibility)
    except (TypeError, ValueError):
        return None
    if seconds <= LONG_LEASE_SECONDS:
        return None
    hours = seconds / 3600
    shown = f"{hours:g} hours" if hours >= 1 else f"{seconds / 60:g} minutes"
    message = (
        f"broker_transport_options['visibility_timeout']={seconds:g} is used as the "
        f"crash-recovery lease: tasks of a worker that dies are redelivered only after "
        f"{shown} (live workers renew their leases, so long tasks need no long lease); set "
        "docket_lease_seconds (e.g. 30) to recover sooner"
    )
    log.warning(message)
    return message


def _configured_queues(conf: Any) -> list[str]:
    """Without -Q a worker consumes every queue in ``task_queues`` (or the default one)."""
    names = []
    for q in conf.get("task_queues") or ():
        name = (
            q
            if isinstance(q, str)
            else getattr(q, "name", None) or (q.get("name") if isinstance(q, dict) else None)
        )
        if name:
            names.append(str(name))
    return names or [str(conf.get("task_default_queue") or "celery")]
