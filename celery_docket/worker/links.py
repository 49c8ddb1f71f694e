"""What a finished task sends on, as Celery's tracer does: callbacks and the next chain
step on success; on failure the chord count, the rest of the chain marked failed with the
same exception, and the errbacks.

A chord member's own result is stored before it is counted, so whoever reads the chord's
outcome finds the member's state (and its own exception) already there.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from .. import states
from . import chords

log = logging.getLogger("celery.worker.strategy")


def send_followups(app: Any, request: Any, retval: Any) -> None:
    """Success: count toward the chord, send callbacks and the next chain step."""
    if request.chord:
        app.store_result(request.id, retval, states.SUCCESS, request=request)
        chords.on_part_return(app, request, states.SUCCESS, retval)
    for callback in request.callbacks or ():
        sig = app.signature(callback)
        sig.apply_async((retval,), parent_id=request.id, root_id=request.root_id)
    chain = list(request.chain or ())
    if chain:
        nxt = app.signature(chain.pop())
        nxt.apply_async(
            (retval,), chain=chain or None, parent_id=request.id, root_id=request.root_id
        )


def send_errbacks(app: Any, request: Any, exc: BaseException | None, traceback: Any) -> None:
    """Failure: store it, count it toward the chord, fail the chain's rest, call errbacks."""
    if exc is None:
        return
    if request.chord:
        app.store_result(request.id, exc, states.FAILURE, traceback, request=request)
    fail_request(app, request, exc, traceback)


def fail_request(app: Any, request: Any, exc: BaseException, traceback: Any) -> None:
    """What Celery's ``mark_as_failure`` does after storing a request's failure."""
    if request.chord:
        try:
            chords.on_part_return(app, request, states.FAILURE, exc)
        except Exception:
            log.exception("chord of failed task %s", request.id)
    for elem in request.chain or ():
        sig = app.signature(elem)
        task_id = sig.options.get("task_id")
        if task_id:
            app.store_result(task_id, exc, states.FAILURE, traceback)
        if sig.options.get("chord") and task_id:
            try:
                chords.on_part_return(app, chords._FakeRequest(task_id, sig), states.FAILURE, exc)
            except Exception:
                log.exception("chord of chain step %s", task_id)
    call_errbacks(app, request, exc, traceback)


def _new_style(app: Any, sig: Any) -> bool:
    """An errback taking ``(request, exc, traceback)`` is called here, in the worker."""
    task = app.tasks.get(sig.name)
    if task is None or getattr(task, "_bound", False):
        return False
    try:
        params = inspect.signature(task.run).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) > 1 or any(p.kind is p.VAR_POSITIONAL for p in params)


def call_errbacks(
    app: Any, request: Any, exc: BaseException, traceback: Any, eager: bool = False
) -> None:
    """New-style errbacks ``(request, exc, traceback)`` are called here; the others are sent
    (run here, eagerly, for an eager call) with the failed task's id."""
    for errback in request.errbacks or ():
        sig = app.signature(errback)
        if type(sig).__name__ == "Signature" and _new_style(app, sig):
            try:
                sig(request, exc, traceback)
            except Exception:
                log.exception("errback %s raised", sig.name)
            continue
        try:
            call = sig.apply if eager else sig.apply_async
            call((request.id,), parent_id=request.id, root_id=request.root_id or request.id)
        except Exception:
            log.exception("errback %s could not be sent", sig.name)
