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
        body = getattr(sig, "body", None) if sig.subtask_type == "chord" else None
        for target in _result_holders(app, body):
            app.store_result(target, exc, states.FAILURE, traceback)
        if sig.options.get("chord") and task_id:
            try:
                chords.on_part_return(app, chords._FakeRequest(task_id, sig), states.FAILURE, exc)
            except Exception:
                log.exception("chord of chain step %s", task_id)
    call_errbacks(app, request, exc, traceback)


def _result_holders(app: Any, sig: Any) -> list[str]:
    """The ids whose results stand for a chord step's outcome: its body's (every task of a
    group body, the last task of a chain body)."""
    if sig is None:
        return []
    sig = app.signature(sig)
    if sig.subtask_type == "group":
        return [i for t in sig.tasks for i in _result_holders(app, t)]
    if sig.subtask_type == "chain":
        return _result_holders(app, sig.tasks[-1]) if sig.tasks else []
    if sig.subtask_type == "chord":
        return _result_holders(app, sig.body)
    task_id = sig.options.get("task_id")
    return [task_id] if task_id else []


def _new_style(app: Any, sig: Any) -> bool:
    """An errback taking ``(request, exc, traceback)`` is called here, in the worker."""
    task = app.tasks.get(sig.name)
    if task is None or getattr(task, "_bound", False):
        return False
    try:
        params = inspect.signature(task.run).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not sig.immutable:
        # arguments stored on the errback fill parameters first (as Celery counts them)
        positional = [p for p in positional[len(sig.args) :] if p.name not in sig.kwargs]
    return len(positional) > 1


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
