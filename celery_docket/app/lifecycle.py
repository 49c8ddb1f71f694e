"""Where every task and worker signal of Celery's is sent: one function per lifecycle point.

The handler, the tracer, the publisher and the worker controller call these; nothing else in
the package sends a task or worker signal (``tests/test_signal_seam.py`` enforces it), so
what a receiver sees, and in which order, is read in one place. Each function first tests
whether the signal has receivers: a point nobody listens to costs one truth test, not a
keyword dict and a call. Events, Sentry, OpenTelemetry and Prometheus attach here by
connecting to these signals, as they do on Celery.
"""

from __future__ import annotations

from typing import Any

from .. import signals

# -- publishing ----------------------------------------------------------------------------


def publishing_wanted() -> bool:
    """Whether ``before_task_publish`` has receivers (the publisher then builds the body)."""
    return bool(signals.before_task_publish.receivers)


def before_publish(
    name: str, body: Any, queue: str, headers: dict[str, Any], properties: dict[str, Any]
) -> None:
    if signals.before_task_publish.receivers:
        signals.before_task_publish.send(
            sender=name,
            body=body,
            exchange="",
            routing_key=queue,
            headers=headers,
            properties=properties,
            declare=[],
            retry_policy=None,
        )


def after_publish(name: str, queue: str, headers: dict[str, Any]) -> None:
    if signals.after_task_publish.receivers:
        signals.after_task_publish.send(
            sender=name, body=None, exchange="", routing_key=queue, headers=headers
        )


# -- a delivery, before its task runs ------------------------------------------------------


def unknown(consumer: Any, message: Any, exc: BaseException, name: str, task_id: str) -> None:
    if signals.task_unknown.receivers:
        signals.task_unknown.send(sender=consumer, message=message, exc=exc, name=name, id=task_id)


def received(consumer: Any, request: Any) -> None:
    if signals.task_received.receivers:
        signals.task_received.send(sender=consumer, request=request)


def revoked(
    task: Any, request: Any, *, terminated: bool, signum: int | None, expired: bool
) -> None:
    if signals.task_revoked.receivers:
        signals.task_revoked.send(
            sender=task, request=request, terminated=terminated, signum=signum, expired=expired
        )


# -- the task's run ------------------------------------------------------------------------


def prerun(task: Any, task_id: str, args: Any, kwargs: Any) -> None:
    if signals.task_prerun.receivers:
        signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=args, kwargs=kwargs)


def success(task: Any, retval: Any, runtime: float) -> None:
    if signals.task_success.receivers:
        signals.task_success.send(sender=task, result=retval, runtime=runtime)


def failure(
    task: Any,
    task_id: str,
    exc: BaseException,
    args: Any,
    kwargs: Any,
    traceback: Any = None,
    einfo: Any = None,
) -> None:
    """A task failed: raised, was killed, or could not run (no traceback then)."""
    if signals.task_failure.receivers:
        signals.task_failure.send(
            sender=task,
            task_id=task_id,
            exception=exc,
            args=args,
            kwargs=kwargs,
            traceback=traceback,
            einfo=einfo,
        )


def retry(task: Any, request: Any, reason: BaseException, einfo: Any) -> None:
    if signals.task_retry.receivers:
        signals.task_retry.send(sender=task, request=request, reason=reason, einfo=einfo)


def rejected(task: Any, exc: BaseException) -> None:
    if signals.task_rejected.receivers:
        signals.task_rejected.send(sender=task, message=None, exc=exc)


def postrun(task: Any, task_id: str, args: Any, kwargs: Any, retval: Any, state: str) -> None:
    if signals.task_postrun.receivers:
        signals.task_postrun.send(
            sender=task,
            task_id=task_id,
            task=task,
            args=args,
            kwargs=kwargs,
            retval=retval,
            state=state,
        )


# -- the worker ----------------------------------------------------------------------------


def logging_taken_over(level: int, logfile: str | None) -> bool:
    """``setup_logging``: True when a receiver configures logging itself (as in Celery,
    connecting to it at all means the worker leaves logging alone)."""
    received = signals.setup_logging.send(
        sender=None, loglevel=level, logfile=logfile, format=None, colorize=False
    )
    return bool(received)


def logging_set_up(level: int, logfile: str | None) -> None:
    """``after_setup_logger`` and ``after_setup_task_logger``, once the worker's logging is."""
    import logging

    for signal, logger in (
        (signals.after_setup_logger, logging.getLogger()),
        (signals.after_setup_task_logger, logging.getLogger("celery.task")),
    ):
        signal.send(
            sender=None, logger=logger, loglevel=level, logfile=logfile, format=None, colorize=False
        )


def worker_configured(controller: Any, hostname: str, conf: Any) -> None:
    """``celeryd_init``: before the app's modules are imported."""
    signals.celeryd_init.send(sender=hostname, instance=controller, conf=conf, options={})


def worker_init(controller: Any) -> None:
    signals.worker_init.send(sender=controller)


def process_init() -> None:
    """``worker_process_init``: in each process that runs tasks (a prefork child, or solo)."""
    signals.worker_process_init.send(sender=None)


def process_shutdown(exitcode: int) -> None:
    """``worker_process_shutdown``: a process that ran tasks is exiting (Sentry flushes here)."""
    import os

    signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=exitcode)


def worker_ready(controller: Any) -> None:
    signals.worker_ready.send(sender=controller)


def worker_shutdown(controller: Any) -> None:
    signals.worker_shutdown.send(sender=controller)


__all__ = [
    "after_publish",
    "before_publish",
    "failure",
    "logging_set_up",
    "logging_taken_over",
    "postrun",
    "prerun",
    "process_init",
    "process_shutdown",
    "publishing_wanted",
    "received",
    "rejected",
    "retry",
    "revoked",
    "success",
    "unknown",
    "worker_configured",
    "worker_init",
    "worker_ready",
    "worker_shutdown",
]
