"""Publishing: routing a call to its queue, building Celery's message, enqueueing it.

``Publishing`` is the half of :class:`~celery_docket.app.base.Celery` that sends tasks and
hands out result objects; it reads the app's ``conf``, ``tasks``, ``docket`` and ``results``.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from datetime import datetime, timezone
from typing import Any

from .. import _state, protocol, states
from ..canvas.once import next_token as next_once_token
from ..canvas.stamping import message_stamps
from ..contrib import integrations
from ..engine import BrokerUnavailable as EngineBrokerUnavailable
from ..engine import Call
from ..engine import PayloadTooLarge as EnginePayloadTooLarge
from ..exceptions import BrokerUnavailable, PayloadTooLarge
from . import lifecycle
from .task import Task


def _custom_result(task: Any) -> bool:
    """Whether the task's class overrides ``AsyncResult`` (the result ``delay`` returns)."""
    return type(task).AsyncResult is not Task.AsyncResult


class Publishing:
    """``send_task``, routing and result objects of a Celery app."""

    conf: Any
    tasks: Any
    docket: Any
    results: Any
    result_ttl_ms: Any

    # -- routing ----------------------------------------------------------------------------

    def route(self, name: str, args: Any, kwargs: Any, options: dict[str, Any], task: Any) -> str:
        """Queue for a call: explicit option > task attribute > task_routes > default."""
        queue = options.get("queue")
        if queue:
            return str(getattr(queue, "name", queue))
        routes = self.conf.get("task_routes")
        if routes:
            found = self._lookup_route(routes, name, args, kwargs, options, task)
            if found:
                return found
        return str(self.conf.get("task_default_queue") or "celery")

    def _lookup_route(
        self, routes: Any, name: str, args: Any, kwargs: Any, options: dict[str, Any], task: Any
    ) -> str | None:
        if isinstance(routes, (dict, str)) or callable(routes):
            routes = [routes]
        for router in routes:
            if isinstance(router, str):
                module, _, attr = router.replace(":", ".").rpartition(".")
                router = getattr(importlib.import_module(module), attr)
            if isinstance(router, dict):
                for pattern, dest in router.items():
                    hit = pattern == name
                    if not hit and isinstance(pattern, re.Pattern):
                        hit = bool(pattern.match(name))
                    elif not hit and isinstance(pattern, str) and any(c in pattern for c in "*?["):
                        hit = fnmatch.fnmatchcase(name, pattern)
                    if hit:
                        return _queue_of(dest)
            elif callable(router):
                try:
                    dest = router(name, args, kwargs, options, task=task)
                except TypeError:
                    dest = router(name, args, kwargs, options)
                if dest:
                    return _queue_of(dest)
        return None

    # -- publishing -------------------------------------------------------------------------

    def send_task(
        self,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        task_id: str | None = None,
        producer: Any = None,
        connection: Any = None,
        router: Any = None,
        result_cls: Any = None,
        expires: Any = None,
        publisher: Any = None,
        link: Any = None,
        link_error: Any = None,
        add_to_parent: bool = True,
        group_id: str | None = None,
        group_index: int | None = None,
        retries: int = 0,
        chord: Any = None,
        reply_to: str | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        route_name: str | None = None,
        shadow: str | None = None,
        chain: Any = None,
        task_type: Any = None,
        replace: bool = False,
        _once: str | None = None,
        **options: Any,
    ) -> Any:
        """Publish a task by name; returns its AsyncResult. Explicit task ids are idempotent."""
        from ..result import AsyncResult

        if integrations.publish_pending:  # once per process: is Sentry/OTel set up?
            integrations.on_first_publish(self)
        conf = self.conf
        if conf.task_always_eager and task_type is None and name in self.tasks:
            return self.tasks[name].apply_async(
                args,
                kwargs,
                task_id=task_id,
                countdown=countdown,
                eta=eta,
                link=link,
                link_error=link_error,
                **options,
            )
        if time_limit is not None and soft_time_limit is not None and soft_time_limit > time_limit:
            raise ValueError("soft_time_limit must be less than or equal to time_limit")
        explicit_id = task_id is not None
        if _once is None:  # sending a chord's body: at most once per send (canvas/once.py)
            _once = next_once_token()
        task_id = task_id or protocol_uuid()
        parent = _state.get_current_worker_task()
        if parent is not None:
            req = parent.request
            root_id = root_id or req.root_id or req.id
            parent_id = parent_id or req.id
        queue = self.route(name, args, kwargs, options, task_type)
        serializer = options.get("serializer") or conf.task_serializer
        headers = dict(options.get("headers") or {})
        stamped_headers, stamps = message_stamps(options)
        if options.get("replaced_task_nesting"):
            headers["replaced_task_nesting"] = options["replaced_task_nesting"]
        message = protocol.build_task_message(
            name,
            list(args or ()),
            dict(kwargs or {}),
            task_id=task_id,
            countdown=countdown,
            eta=eta,
            expires=expires,
            group_id=group_id,
            group_index=group_index,
            retries=retries,
            chord=_sig_dict(chord),
            callbacks=_sig_list(link),
            errbacks=_sig_list(link_error),
            chain=[_sig_dict(s) for s in chain] if chain else None,
            reply_to=reply_to,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            root_id=root_id,
            parent_id=parent_id,
            shadow=shadow,
            ignore_result=options.get("ignore_result"),
            stamped_headers=stamped_headers,
            stamps=stamps,
            headers=headers or None,
            properties={k: options[k] for k in protocol.PUBLISH_PROPERTIES if k in options},
            priority=options.get("priority"),
            queue=queue,
            serializer=serializer,
            compression=options.get("compression") or conf.get("task_compression"),
            max_body_bytes=int(conf.get("docket_max_payload_bytes")),
        )
        body = None
        if lifecycle.publishing_wanted():
            # Celery's protocol-2 body, for receivers that read or log it
            body = (
                list(args or ()),
                dict(kwargs or {}),
                {
                    "callbacks": _sig_list(link),
                    "errbacks": _sig_list(link_error),
                    "chain": [_sig_dict(s) for s in chain] if chain else None,
                    "chord": _sig_dict(chord),
                },
            )
        lifecycle.before_publish(name, body, queue, message.headers, message.properties)
        when = _eta_of(message.headers.get("eta"))
        watch = not options.get("ignore_result") and parent is None
        if watch:
            # subscribed before the send, as Celery's Redis backend does (never inside a
            # worker's task, which must not wait on results): a later get() needs no round
            # trip, and the send itself is not delayed by it
            self.results.watch(task_id)
        try:
            execution = self._enqueue(
                Call(
                    name,
                    message.encode(int(conf.get("docket_envelope_version"))),
                    queue=queue,
                    when=when,
                    key=task_id if explicit_id else None,
                    execution_id=task_id,
                    replace=replace,
                    once=_once,
                )
            )
        except EnginePayloadTooLarge as exc:
            self.results.unwatch(task_id)
            raise PayloadTooLarge(exc.size, exc.limit) from None
        except (EngineBrokerUnavailable, OSError) as exc:
            self.results.unwatch(task_id)
            raise BrokerUnavailable(f"cannot publish {name}[{task_id}]: {exc}") from exc
        lifecycle.after_publish(name, queue, message.headers)
        if result_cls is None and task_type is not None and _custom_result(task_type):
            result = task_type.AsyncResult(execution.id)  # AbortableTask's, say, as in Celery
        else:
            result = (result_cls or AsyncResult)(execution.id, app=self, task_name=name)
        result.ignored = bool(options.get("ignore_result"))
        if watch and execution.id != task_id:  # an explicit id already queued under another
            self.results.unwatch(task_id)
            self.results.watch(execution.id)
        if parent is not None and add_to_parent:
            parent.request.children = getattr(parent.request, "children", None) or []
            parent.request.children.append(result)
        return result

    def _enqueue(self, call: Call) -> Any:
        """Publish through the engine; a connection error becomes the engine's typed one."""
        import redis

        try:
            return self.docket.enqueue(call)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            from ..engine.docket import unreachable

            raise unreachable(exc) from exc

    def AsyncResult(self, id: str, **kwargs: Any) -> Any:  # noqa: N802, A002 - Celery's API
        from ..result import AsyncResult

        return AsyncResult(id, app=self, **kwargs)

    def ResultSet(self, results: Any, **kwargs: Any) -> Any:  # noqa: N802
        from ..result import ResultSet

        return ResultSet(results, app=self, **kwargs)

    def GroupResult(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        from ..result import GroupResult

        return GroupResult(*args, app=self, **kwargs)

    def signature(self, *args: Any, **kwargs: Any) -> Any:
        from ..canvas import signature

        kwargs.setdefault("app", self)
        return signature(*args, **kwargs)

    def store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
    ) -> None:
        """Write a state outside a completion (STARTED, custom progress states)."""
        self.results.set(
            task_id,
            self.encode_meta(task_id, state, result, traceback, request=request),
            self.result_ttl_ms() or None,
        )

    def encode_meta(
        self,
        task_id: str,
        state: str,
        result: Any,
        traceback: str | None = None,
        request: Any = None,
    ) -> bytes:
        conf = self.conf
        extended = bool(conf.get("result_extended"))
        children = None
        if request is not None and getattr(request, "children", None):
            children = [[[c.id, None], None] for c in request.children]
        try:
            return protocol.encode_result_meta(
                task_id,
                state,
                result,
                traceback,
                children=children,
                name=getattr(request, "task", None),
                args=getattr(request, "args", None),
                kwargs=getattr(request, "kwargs", None),
                worker=getattr(request, "hostname", None),
                retries=getattr(request, "retries", None),
                queue=(getattr(request, "delivery_info", None) or {}).get("routing_key"),
                extended=extended,
                serializer=conf.result_serializer,
                group_id=getattr(request, "group", None),
                parent_id=getattr(request, "parent_id", None),
            )
        except Exception as exc:  # noqa: BLE001 - an unserializable return value becomes a failure
            from ..exceptions import EncodeError  # type: ignore[attr-defined]

            err = EncodeError(f"result of {task_id} cannot be serialized: {exc!r}")
            return protocol.encode_result_meta(
                task_id, states.FAILURE, err, traceback, serializer=conf.result_serializer
            )


def protocol_uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def _queue_of(dest: Any) -> str | None:
    if isinstance(dest, str):
        return dest
    if isinstance(dest, dict):
        q = dest.get("queue")
        return None if q is None else str(getattr(q, "name", q))
    return None


def _sig_dict(sig: Any) -> Any:
    if sig is None:
        return None
    return dict(sig)


def _sig_list(sigs: Any) -> Any:
    if not sigs:
        return None
    if not isinstance(sigs, (list, tuple)):
        sigs = [sigs]
    return [dict(s) for s in sigs]


def _eta_of(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        eta = value
    else:
        eta = datetime.fromisoformat(str(value))
    if eta.tzinfo is None:
        eta = eta.replace(tzinfo=timezone.utc)
    return eta
