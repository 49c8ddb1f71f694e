"""Turn one engine delivery of a Celery message into an engine outcome.

Decode and check the message, run the task through ``app.trace``, and say what to commit:
the Celery result meta, a retry (same id, retries + 1) or a dead letter with a reason.
Follow-up messages (links, chain steps) are published before the commit.

Revoked tasks are discarded before they run (state REVOKED, ``task_revoked`` sent): the
check is a lookup in the process's ``RevokedSet``, never a Redis call. A task whose process a
prefork supervisor terminated on request comes back with the fate ``revoked:<signum>`` and is
reported REVOKED (terminated) instead of run again.
"""

from __future__ import annotations

import logging
import signal
import time
from datetime import datetime, timezone
from functools import partial
from types import SimpleNamespace
from typing import Any

from .. import states
from ..app import lifecycle
from ..app.task import Context, actual_ignore_result
from ..app.trace import LOG_RECEIVED, LOG_SUCCESS, run_task
from ..engine import Call, Delivery, Outcome, ResultWrite
from ..exceptions import (
    InvalidTaskError,
    NotRegistered,
    PayloadTooLarge,
    TimeLimitExceeded,
)
from ..protocol import (
    PUBLISH_PROPERTIES,
    TaskMessage,
    build_task_message,
    custom_headers,
    decode_body,
)
from . import chords, links
from .hooks import SUCCEEDED
from .limits import check_headers, parse_date, soft_limit, time_limits
from .mailbox import Activity
from .rate_limit import RateLimitGate
from .revoke import RevokedSet

log = logging.getLogger("celery.worker.strategy")
tlog = logging.getLogger("celery.app.trace")


class CeleryHandler:
    """The engine handler of a Celery app's worker."""

    def __init__(
        self,
        app: Any,
        hostname: str,
        soft_time_limit: float | None = None,
        time_limit: float | None = None,
        revoked: RevokedSet | None = None,
        activity: Activity | None = None,
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.soft_time_limit = soft_time_limit
        self.time_limit = time_limit
        self.revoked = (
            revoked if revoked is not None else RevokedSet(app.docket.redis, app.docket.prefix)
        )
        self.activity = activity if activity is not None else Activity()
        conf = app.conf
        self.accept = list(conf.accept_content or ["json"])
        self.ttl_ms = app.result_ttl_ms()
        self.explicit_early_ack = bool(
            conf.value_set_for("task_acks_late") and not conf.task_acks_late
        )
        self.max_payload = int(conf.get("docket_max_payload_bytes"))
        self.envelope_version = int(conf.get("docket_envelope_version"))
        self.rate_limits = RateLimitGate(app)

    # -- helpers ----------------------------------------------------------------------------

    def _write(
        self,
        task_id: str,
        state: str,
        result: Any,
        traceback: str | None = None,
        request: Any = None,
    ) -> ResultWrite | None:
        """The result write to commit with the ack, when results live on the broker.

        With a separate result backend the write cannot share the broker's atomic commit:
        it is stored there first (before the ack, so nothing acked lacks its result).
        """
        meta = self.app.encode_meta(task_id, state, result, traceback, request=request)
        store = self.app.results
        if store is not self.app.docket.results:
            store.set(task_id, meta, self.ttl_ms or None)
            return None
        return ResultWrite(store.key(task_id), meta, self.ttl_ms)

    def acks_early(self, d: Delivery) -> bool:
        """At-most-once only when asked for explicitly: ``acks_late=False`` on the task, or
        ``task_acks_late = False`` set in the configuration (Celery's default value is not
        taken as a request: late acks are our default on purpose)."""
        task = self.app._tasks.get(d.function)
        if task is None:
            return False
        if task.acks_late is not None:
            return task.acks_late is False
        return self.explicit_early_ack

    def give_up(self, d: Delivery, reason: str) -> Outcome:
        """A message whose runners kept dying: dead-letter it and store FAILURE
        (``WorkerLostError``), so ``get()`` reports it instead of waiting forever."""
        from ..exceptions import WorkerLostError

        try:
            message = self._message(d)
        except Exception:  # noqa: BLE001 - an undecodable message is dead-lettered with the reason
            return Outcome.dead(reason)
        task_id = message.id
        log.error("Task %s[%s] given up: %s", d.function, task_id, reason)
        exc = WorkerLostError(reason)
        write = self._write(task_id, states.FAILURE, exc)
        self._fail_chord(message, exc, write=write)
        return Outcome.dead(reason, write)

    def _fail_chord(
        self,
        message: TaskMessage,
        exc: BaseException,
        embed: Any = None,
        *,
        write: ResultWrite | None = None,
    ) -> None:
        """A chord header dead-lettered instead of run fails its chord (ChordError), as a
        failing one does; otherwise the body would stay PENDING forever."""
        try:
            if embed is None:
                embed = decode_body(message, self.accept, self.max_payload)[2]
            chord = embed.get("chord")
            if not chord or not message.headers.get("group"):
                return
            request = SimpleNamespace(id=message.id, chord=chord, group=message.headers["group"])
            self._store_now(message.id, write)
            chords.on_header_failed(self.app, request, exc)
        except Exception:  # the dead letter and its FAILURE matter more
            log.exception("chord of dead-lettered task %s", message.id)

    def _limits_of(self, d: Delivery, message: TaskMessage, task: Any) -> tuple[Any, Any]:
        """The run's (hard, soft) limits, looked up once per delivery (the pool asks too)."""
        if (limits := d.scratch.get("limits")) is None:
            limits = d.scratch["limits"] = time_limits(
                message.headers, task, self.time_limit, self.soft_time_limit, self.app
            )
        return limits  # type: ignore[return-value]

    @staticmethod
    def _message(d: Delivery) -> TaskMessage:
        """The delivery's message, decoded once and kept with the delivery."""
        cached = d.scratch.get("message")
        if isinstance(cached, TaskMessage):
            return cached
        message = TaskMessage.decode(d.body)
        d.scratch["message"] = message
        return message

    def task_id_of(self, d: Delivery) -> str:
        """The Celery task id of a delivery: its execution id, except for beat ticks (one
        execution per entry, a new task id per tick)."""
        if not d.execution_id.startswith("beat:"):
            return d.execution_id
        try:
            return self._message(d).id
        except Exception:  # noqa: BLE001 - an undecodable message falls back to its execution id
            return d.execution_id

    def hard_limit_of(self, d: Delivery) -> float | None:
        try:
            message = self._message(d)
            task = self.app._tasks.get(message.task)
        except Exception:  # noqa: BLE001 - an undecodable message has no limit of its own
            return None
        return None if task is None else self._limits_of(d, message, task)[0]

    # -- the handler ----------------------------------------------------------------------

    def _too_large(self, d: Delivery, task_id: str, exc: PayloadTooLarge) -> Outcome:
        log.error("Refusing task %s[%s]: %s", d.function, task_id, exc)
        return Outcome.dead(f"payload too large: {exc}", self._write(task_id, states.FAILURE, exc))

    def _invalid(self, d: Delivery, exc: InvalidTaskError) -> Outcome:
        """Dead-letter a malformed message with FAILURE stored under whatever id can be
        read (the message's, else the entry's), so ``get()`` raises instead of waiting."""
        log.error("Received invalid task message %s: %s", d.execution_id, exc)
        task_id = d.execution_id
        cached = d.scratch.get("message")
        if isinstance(cached, TaskMessage) and isinstance(cached.headers.get("id"), str):
            task_id = cached.headers["id"]
        elif task_id.startswith("beat:"):
            return Outcome.dead(f"invalid task message: {exc}")
        return Outcome.dead(
            f"invalid task message: {exc}", self._write(task_id, states.FAILURE, exc)
        )

    def __call__(self, d: Delivery) -> Outcome:
        if len(d.body) > self.max_payload:  # written past the producer's check: not decoded
            return self._too_large(
                d, self.task_id_of(d), PayloadTooLarge(len(d.body), self.max_payload)
            )
        try:
            message = self._message(d)
            check_headers(message.headers)
        except InvalidTaskError as exc:
            return self._invalid(d, exc)
        headers = message.headers
        task_id, name = headers["id"], headers["task"]
        task = self.app._tasks.get(name)
        if task is None:
            log.error(
                "Received unregistered task of type %r.\nThe message has been ignored and "
                "discarded.",
                name,
            )
            unknown = NotRegistered(name)
            lifecycle.unknown(self, message, unknown, name, task_id)
            write = self._write(task_id, states.FAILURE, unknown)
            self._fail_chord(message, unknown, write=write)
            return Outcome.dead(f"unregistered task {name!r}", write)
        try:
            args, kwargs, embed = decode_body(message, self.accept, self.max_payload)
        except PayloadTooLarge as exc:
            return self._too_large(d, task_id, exc)
        except Exception as exc:  # noqa: BLE001 - a payload may fail to decode in any way: dead-lettered with the reason
            log.error("Cannot decode task %s[%s]: %s", name, task_id, exc)
            return Outcome.dead(
                f"cannot decode body: {exc}", self._write(task_id, states.FAILURE, exc)
            )
        request = self._request(d, message, task, args, kwargs, embed)
        log.info(LOG_RECEIVED, {"name": name, "id": task_id})
        lifecycle.received(self, request)
        if d.fate is not None and d.fate.startswith("revoked"):
            signum = d.fate.partition(":")[2]
            return self._revoked(
                task,
                request,
                "terminated",
                terminated=True,
                signum=int(signum) if signum.isdigit() else signal.SIGTERM,
            )
        if d.fate is not None:
            hard = d.fate.partition(":")[2]
            tlog.error("Hard time limit (%ss) exceeded for %s[%s]", hard, name, task_id)
            killed = TimeLimitExceeded(float(hard) if hard else hard)
            task.on_failure(killed, task_id, args, kwargs, None)
            lifecycle.failure(task, task_id, killed, args, kwargs)
            return Outcome.done(self._write(task_id, states.FAILURE, killed, request=request))
        expires = headers.get("expires")
        if expires and parse_date(expires) < datetime.now(timezone.utc):
            log.info("Discarding expired task %s[%s]", name, task_id)
            lifecycle.revoked(task, request, terminated=False, signum=None, expired=True)
            from ..exceptions import TaskRevokedError

            return Outcome.done(
                self._write(task_id, states.REVOKED, TaskRevokedError("expired"), request=request)
            )
        if task_id in self.revoked:
            return self._revoked(task, request, "revoked")
        if task.typing:
            try:
                task.check_arguments(args, kwargs)
            except TypeError as exc:
                tlog.error("Task %s[%s] raised unexpected: %r", name, task_id, exc)
                write = self._write(task_id, states.FAILURE, exc, request=request)
                self._fail_chord(message, exc, embed, write=write)
                return Outcome.dead(f"arguments do not fit {name}: {exc}", write)
        if (deferred := self.rate_limits.defer(d, message, task)) is not None:
            return deferred  # over its rate limit: parked until its slot
        if task.track_started and not actual_ignore_result(task, request):
            self.app.store_result(
                task_id, {"pid": _pid(), "hostname": self.hostname}, states.STARTED, request=request
            )
        hard, soft = self._limits_of(d, message, task)
        self.activity.started(task_id, partial(self._info, d, request, task, time.time()))
        try:
            with soft_limit(soft):
                outcome = run_task(task, request, args, kwargs, eager=False)
        except BaseException as exc:  # SystemExit & co. escape run_task
            if isinstance(exc, Exception):
                raise
            # as Celery's pools: FAILURE with WorkerLostError(repr(exc)), not exc itself
            from ..app.trace import ExceptionInfo, TraceOutcome
            from ..exceptions import WorkerLostError

            tlog.error("Task %s[%s] raised %r", name, task_id, exc)
            lost = WorkerLostError(repr(exc))
            einfo = ExceptionInfo(lost)
            outcome = TraceOutcome(
                states.FAILURE, exception=lost, traceback=einfo.traceback, einfo=einfo
            )
        finally:
            self.activity.finished(task_id, name)
        if outcome.state == states.RETRY and task_id in self.revoked:
            return self._revoked(task, request, "revoked")
        return self._commit_plan(d, message, task, request, outcome)

    # -- revocation -----------------------------------------------------------------------

    def _revoked(
        self,
        task: Any,
        request: Context,
        reason: str,
        *,
        terminated: bool = False,
        signum: int | None = None,
    ) -> Outcome:
        """Discard a revoked task: REVOKED with TaskRevokedError(reason), ``task_revoked``."""
        from ..exceptions import TaskRevokedError

        task_id = request.id
        assert task_id is not None
        if terminated:
            log.info("Terminated %s[%s] (signal %s)", task.name, task_id, signum)
        else:
            log.info("Discarding revoked task: %s[%s]", task.name, task_id)
        exc = TaskRevokedError(reason)
        if request.chord:
            try:
                chords.on_header_failed(self.app, request, exc)
            except Exception:
                log.exception("chord of revoked task %s", task_id)
        lifecycle.revoked(
            task,
            request,
            terminated=terminated,
            signum=int(signum) if signum is not None else None,
            expired=False,
        )
        write = (
            self._write(task_id, states.REVOKED, exc, request=request)
            if self._store_wanted(task, request, states.REVOKED)
            else None
        )
        return Outcome.done(write)

    def announce_removed(self, body: bytes, queue: str) -> None:
        """``task_revoked`` for a revoked task taken out of the engine before any worker
        saw it (its REVOKED state was written by ``app.control.revoke``)."""
        message = TaskMessage.decode(body)
        task = self.app._tasks.get(message.task)
        if task is None:
            log.debug("revoked task %s is not registered here; no signal", message.task)
            return
        args, kwargs, embed = decode_body(message, self.accept)
        d = Delivery(queue, "", message.id, message.task, body, 1, False, "", False)
        request = self._request(d, message, task, args, kwargs, embed)
        log.info("Discarded revoked task: %s[%s]", task.name, message.id)
        lifecycle.revoked(task, request, terminated=False, signum=None, expired=False)

    def _info(self, d: Delivery, request: Context, task: Any, started: float) -> dict[str, Any]:
        """Celery's TASK_INFO of a running task (for ``inspect active``), built on demand."""
        from ..control.shapes import jsonable
        from .mailbox import HB_LIMIT

        h = request.headers or {}
        return {
            "id": request.id,
            "name": task.name,
            "args": jsonable(request.args, h.get("argsrepr"), HB_LIMIT),
            "kwargs": jsonable(request.kwargs, h.get("kwargsrepr"), HB_LIMIT),
            "type": task.name,
            "hostname": self.hostname,
            "time_start": started,
            "acknowledged": task.acks_late is False,
            "delivery_info": request.delivery_info,
            "worker_pid": _pid(),
            "argsrepr": h.get("argsrepr"),
            "kwargsrepr": h.get("kwargsrepr"),
        }

    def _request(
        self,
        d: Delivery,
        message: TaskMessage,
        task: Any,
        args: list[Any],
        kwargs: dict[str, Any],
        embed: dict[str, Any],
    ) -> Context:
        h = message.headers
        props = message.properties or {}
        redelivered = d.delivery_count > 1 or bool(props.get("redelivered"))
        stamped = list(h.get("stamped_headers") or [])
        stamps = h.get("stamps") or {}
        return Context(
            id=h["id"],
            task=h["task"],
            task_name=h["task"],
            stamped_headers=stamped,
            stamps={name: stamps.get(name) for name in stamped},
            _Request__payload=(args, kwargs, embed),  # what Celery's Request keeps privately
            args=args,
            kwargs=kwargs,
            retries=h.get("retries") or 0,
            eta=h.get("eta"),
            expires=h.get("expires"),
            root_id=h.get("root_id"),
            parent_id=h.get("parent_id"),
            group=h.get("group"),
            group_index=h.get("group_index"),
            timelimit=h.get("timelimit"),
            origin=h.get("origin"),
            shadow=h.get("shadow"),
            argsrepr=h.get("argsrepr"),
            kwargsrepr=h.get("kwargsrepr"),
            ignore_result=h.get("ignore_result"),
            headers=h,
            callbacks=embed.get("callbacks"),
            errbacks=embed.get("errbacks"),
            chain=embed.get("chain"),
            chord=embed.get("chord"),
            reply_to=props.get("reply_to"),
            correlation_id=props.get("correlation_id"),
            priority=props.get("priority"),
            delivery_info={
                "exchange": "",
                "routing_key": d.queue,
                "priority": props.get("priority"),
                "redelivered": redelivered,
            },
            hostname=self.hostname,
            is_eager=False,
            called_directly=False,
            redelivered=redelivered,
            properties=props,
            replaced_task_nesting=h.get("replaced_task_nesting") or 0,
        )

    def _store_wanted(self, task: Any, request: Context, state: str) -> bool:
        if not actual_ignore_result(task, request):
            return True
        return state in states.EXCEPTION_STATES and task.store_errors_even_if_ignored

    def _commit_plan(
        self, d: Delivery, message: TaskMessage, task: Any, request: Context, outcome: Any
    ) -> Outcome:
        task_id, name = request.id, task.name
        assert task_id is not None
        state = outcome.state
        if state == states.RETRY and outcome.retry is not None:
            plan = getattr(outcome.retry, "plan", None) or {}
            eta = plan.get("eta")
            options = plan.get("options") or {}
            queue = str(getattr(options.get("queue"), "name", options.get("queue")) or d.queue)
            retried = build_task_message(
                name,
                plan.get("args", request.args),
                plan.get("kwargs", request.kwargs),
                task_id=task_id,
                eta=eta,
                expires=options.get("expires", request.expires),
                retries=plan.get("retries", 1),
                root_id=request.root_id,
                parent_id=request.parent_id,
                group_id=request.group,
                group_index=request.group_index,
                callbacks=request.callbacks,
                errbacks=request.errbacks,
                chain=request.chain,
                chord=request.chord,
                stamped_headers=request.stamped_headers or None,
                stamps=request.stamps,
                time_limit=options.get("time_limit", request.time_limit),
                soft_time_limit=options.get("soft_time_limit", request.soft_time_limit),
                ignore_result=actual_ignore_result(task, request),
                shadow=options.get("shadow", request.shadow),
                headers={**custom_headers(request.headers), **(options.get("headers") or {})},
                properties={
                    k: (request.properties or {})[k]
                    for k in PUBLISH_PROPERTIES
                    if k in (request.properties or {})
                },
                priority=options.get("priority", request.priority),
                queue=queue,
                serializer=options.get("serializer")
                or task.serializer
                or self.app.conf.task_serializer,
            )
            when_ms = int(eta.timestamp() * 1000) if eta else None
            write = (
                self._write(
                    task_id, states.RETRY, outcome.exception, outcome.traceback, request=request
                )
                if self._store_wanted(task, request, state)
                else None
            )
            if queue != d.queue:
                # another queue: publish there (same task id), then this delivery is done
                self.app.docket.enqueue(
                    Call(
                        name,
                        retried.encode(self.envelope_version),
                        queue=queue,
                        when=eta,
                        execution_id=task_id,
                    )
                )
                return Outcome.done(write)
            return Outcome.again(
                when_ms, retried.encode(self.envelope_version), d.attempt + 1, write
            )
        if state == states.REJECTED:
            requeue = bool(getattr(outcome.exception, "requeue", False))
            if requeue:
                # delivered again at once, flagged so the task sees ``redelivered`` as in Celery
                message.properties["redelivered"] = True
                again = message.encode(self.envelope_version)
                return Outcome.again(None, again, attempt=d.attempt + 1)
            # never runs again: a terminal FAILURE (Celery stores one too), kept as a dead letter
            exc = outcome.exception
            lifecycle.failure(task, task_id, exc, request.args, request.kwargs)
            write = (
                self._write(task_id, states.FAILURE, exc, request=request)
                if self._store_wanted(task, request, states.FAILURE)
                else None
            )
            return Outcome.dead(f"rejected: {getattr(exc, 'reason', '')}", write)
        if state == states.IGNORED:
            return Outcome.done()
        if state == states.SUCCESS:
            if tlog.isEnabledFor(logging.INFO):
                tlog.info(
                    LOG_SUCCESS,
                    {
                        "name": name,
                        "id": task_id,
                        "runtime": f"{outcome.runtime:.6f}",
                        "return_value": repr(outcome.retval),
                    },
                )
            self._send_followups(request, outcome.retval)
            write = (
                self._write(task_id, states.SUCCESS, outcome.retval, request=request)
                if self._store_wanted(task, request, state)
                else None
            )
            d.scratch[SUCCEEDED] = name  # counted in worker state once committed (hooks.py)
            return Outcome.done(write)
        # FAILURE
        write = (
            self._write(
                task_id, states.FAILURE, outcome.exception, outcome.traceback, request=request
            )
            if self._store_wanted(task, request, state)
            else None
        )
        if request.chord:
            self._store_now(task_id, write)
        self._send_errbacks(request, outcome)
        return Outcome.done(write)

    def _store_now(self, task_id: str, write: ResultWrite | None) -> None:
        """Store a chord header's own FAILURE before the chord's ChordError, as Celery
        orders them: a ``get()`` that sees the body fail then finds the failed header (its
        error is the one raised). The commit writes the same value again with the ack."""
        if write is not None:
            self.app.results.set(task_id, write.value, self.ttl_ms or None)

    def _send_followups(self, request: Context, retval: Any) -> None:
        links.send_followups(self.app, request, retval)

    def _send_errbacks(self, request: Context, outcome: Any) -> None:
        links.send_errbacks(self.app, request, outcome.exception, outcome.traceback)


def _pid() -> int:
    import os

    return os.getpid()
