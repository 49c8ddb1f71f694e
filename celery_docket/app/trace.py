"""Running one task call with Celery's hooks, signals and retry rules, eager or in a worker.

The outcome is returned, not stored: the worker commits it atomically with the ack.
"""

from __future__ import annotations

import logging
import traceback as tb_mod
from dataclasses import dataclass
from typing import Any, cast

from .. import _state, states
from ..exceptions import Ignore, Reject, Retry
from . import lifecycle
from .task import Context, Task, exponential_backoff

log = logging.getLogger("celery.app.trace")

# Celery's log messages (``celery.app.trace.LOG_*``), formatted from a mapping of the task's
# fields, so log filters and alerts written for Celery's lines keep matching ours.
LOG_RECEIVED = "Task %(name)s[%(id)s] received"
LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"
LOG_FAILURE = "Task %(name)s[%(id)s] %(description)s: %(exc)s"
LOG_INTERNAL_ERROR = "Task %(name)s[%(id)s] %(description)s: %(exc)s"
LOG_IGNORED = "Task %(name)s[%(id)s] %(description)s"
LOG_REJECTED = "Task %(name)s[%(id)s] %(exc)s"
LOG_RETRY = "Task %(name)s[%(id)s] retry: %(exc)s"


class ExceptionInfo:
    """Celery's ``einfo``: the exception, its type and formatted traceback."""

    def __init__(self, exc: BaseException) -> None:
        self.exception = exc
        self.type = type(exc)
        self.tb = exc.__traceback__
        self.traceback = "".join(tb_mod.format_exception(type(exc), exc, exc.__traceback__))
        self.internal = False

    def __str__(self) -> str:
        return self.traceback

    def __repr__(self) -> str:
        return f"<ExceptionInfo: {self.exception!r}>"


@dataclass
class TraceOutcome:
    state: str
    retval: Any = None
    exception: BaseException | None = None
    traceback: str | None = None
    einfo: ExceptionInfo | None = None
    retry: Retry | None = None
    runtime: float = 0.0


def _autoretry(task: Task, exc: BaseException) -> None:
    """Turn an exception listed in ``autoretry_for`` into ``task.retry`` (raises)."""
    if not task.autoretry_for or not isinstance(exc, task.autoretry_for):
        return
    if task.dont_autoretry_for and isinstance(exc, task.dont_autoretry_for):
        return
    retry_kwargs = dict(task.retry_kwargs or {})
    if task.retry_backoff:
        retry_kwargs["countdown"] = exponential_backoff(
            float(task.retry_backoff),
            task.request.retries,
            float(task.retry_backoff_max),
            bool(task.retry_jitter),
        )
    task.retry(exc=exc, **retry_kwargs)


def _body(task: Task) -> Any:
    """What runs the task: ``task.run``, or the task itself when its class overrides __call__.

    Celery calls the task object, so a base class's ``__call__`` (Flask's app-context
    pattern) wraps every run; checked once per task type and cached on the type.
    """
    cls = type(task)
    custom = cls.__dict__.get("_custom_call")
    if custom is None:
        custom = cls.__call__ is not Task.__call__
        type.__setattr__(cls, "_custom_call", custom)
    return task if custom else task.run


def run_task(
    task: Task, request: Context, args: list[Any], kwargs: dict[str, Any], *, eager: bool
) -> TraceOutcome:
    """Run ``task`` under ``request`` and return what happened (never raises task errors)."""
    import time

    task_id = cast(str, request.id)  # every run has an id (apply() makes one)
    _state.push_task(task)
    task.push_request(**vars(request))
    t0 = time.monotonic()
    outcome: TraceOutcome
    try:
        lifecycle.prerun(task, task_id, args, kwargs)
        try:
            task.before_start(task_id, args, kwargs)
            try:
                retval = _body(task)(*args, **kwargs)
            except Retry:
                raise
            except (Ignore, Reject):
                raise
            except Exception as exc:
                _autoretry(task, exc)
                raise
        except Retry as exc:
            einfo = ExceptionInfo(exc.exc) if exc.exc is not None else None
            outcome = TraceOutcome(states.RETRY, exception=exc.exc, einfo=einfo, retry=exc)
            outcome.traceback = einfo.traceback if einfo else None
            task.on_retry(exc.exc, task_id, args, kwargs, einfo)
            lifecycle.retry(task, task.request, exc, einfo)
            log.info(LOG_RETRY, {"name": task.name, "id": task_id, "exc": exc.humanize()})
        except Ignore as exc:
            outcome = TraceOutcome(states.IGNORED, exception=exc)
        except Reject as exc:
            outcome = TraceOutcome(states.REJECTED, exception=exc)
            lifecycle.rejected(task, exc)
        except Exception as exc:
            einfo = ExceptionInfo(exc)
            outcome = TraceOutcome(
                states.FAILURE, exception=exc, traceback=einfo.traceback, einfo=einfo
            )
            task.on_failure(exc, task_id, args, kwargs, einfo)
            lifecycle.failure(task, task_id, exc, args, kwargs, exc.__traceback__, einfo)
            if not eager:
                log.error(
                    LOG_FAILURE,
                    {
                        "name": task.name,
                        "id": task_id,
                        "description": "raised unexpected",
                        "exc": repr(exc),
                    },
                    exc_info=(type(exc), exc, exc.__traceback__),
                )
        else:
            outcome = TraceOutcome(states.SUCCESS, retval=retval)
            task.on_success(retval, task_id, args, kwargs)
            lifecycle.success(task, retval, time.monotonic() - t0)
        outcome.runtime = time.monotonic() - t0
        if outcome.state not in _NO_AFTER_RETURN:  # as in Celery
            _after_return(task, outcome, task_id, args, kwargs)
        lifecycle.postrun(
            task,
            task_id,
            args,
            kwargs,
            outcome.retval if outcome.state == states.SUCCESS else outcome.exception,
            outcome.state,
        )
        if eager and outcome.state == states.SUCCESS:
            _run_links_eagerly(task, request, outcome.retval)
        elif eager and outcome.state == states.FAILURE and request.errbacks:
            from ..worker.links import call_errbacks

            call_errbacks(task.app, request, outcome.exception, outcome.traceback, eager=True)  # type: ignore[arg-type]
        return outcome
    finally:
        task.pop_request()
        _state.pop_task()


_NO_AFTER_RETURN = frozenset({states.RETRY, states.IGNORED, states.REJECTED})


def _after_return(task: Task, outcome: TraceOutcome, task_id: str, args: Any, kwargs: Any) -> None:
    try:
        task.after_return(
            outcome.state,
            outcome.retval if outcome.state == states.SUCCESS else outcome.exception,
            task_id,
            args,
            kwargs,
            outcome.einfo,
        )
    except Exception:  # a broken hook must not lose the outcome
        log.exception("Task %s[%s] after_return raised", task.name, task_id)


def _run_links_eagerly(task: Task, request: Context, retval: Any) -> None:
    """In eager mode callbacks and chains run inline, as Celery's apply does."""
    for callback in request.callbacks or ():
        sig = task.app.signature(callback)
        sig.apply((retval,) if not sig.immutable else ())
    chain = list(request.chain or ())
    if chain:
        nxt = task.app.signature(chain.pop())
        nxt.apply((retval,) if not nxt.immutable else (), chain=chain or None)
