"""Celery's ``Task`` class: calling, retrying, options; its ``self.request`` is a ``Context``
(``context.py``, re-exported here at Celery's path ``celery.app.task.Context``)."""

from __future__ import annotations

import inspect
import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from .. import _state, states
from ..exceptions import MaxRetriesExceededError, Retry
from .context import Context

__all__ = ["Context", "Task"]


def _argument_stub(fun: Any, bound: bool) -> Any:
    """A function with ``fun``'s parameters (defaults kept as placeholders) and no body."""
    params = list(inspect.signature(fun).parameters.values())
    if bound and params:
        params = params[1:]
    parts: list[str] = []
    seen_star = False
    for p in params:
        if p.kind is p.POSITIONAL_ONLY:
            parts.append(p.name + ("=_d" if p.default is not p.empty else ""))
            if p is params[-1] or params[params.index(p) + 1].kind is not p.POSITIONAL_ONLY:
                parts.append("/")
        elif p.kind is p.VAR_POSITIONAL:
            parts.append("*" + p.name)
            seen_star = True
        elif p.kind is p.KEYWORD_ONLY:
            if not seen_star:
                parts.append("*")
                seen_star = True
            parts.append(p.name + ("=_d" if p.default is not p.empty else ""))
        elif p.kind is p.VAR_KEYWORD:
            parts.append("**" + p.name)
        else:
            parts.append(p.name + ("=_d" if p.default is not p.empty else ""))
    name = getattr(fun, "__name__", "run")
    if not name.isidentifier():
        name = "run"
    namespace: dict[str, Any] = {"_d": None}
    exec(f"def {name}({', '.join(parts)}):\n    pass", namespace)  # noqa: S102 - our own text
    return namespace[name]


def _retry_arguments(task: Any, request: Any, args: Any, kwargs: Any) -> tuple[Any, Any]:
    """The arguments of a retry, as Celery merges them.

    Given only new positional arguments, the inherited keyword arguments they now cover are
    dropped; given only new keyword arguments, inherited positional ones that they name are
    replaced, so switching the calling convention never passes a parameter twice.
    """
    if args is not None and kwargs is None and request.kwargs:
        try:
            params = list(inspect.signature(task.run).parameters.values())
        except (TypeError, ValueError):
            return args, request.kwargs
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        merged = dict(request.kwargs)
        for p in positional[: len(args)]:
            if p.kind is p.POSITIONAL_OR_KEYWORD:
                merged.pop(p.name, None)
        return args, merged
    if kwargs is not None and args is None and request.args:
        try:
            sig = inspect.signature(task.run)
            bound = sig.bind_partial(*request.args)
        except (TypeError, ValueError):
            return request.args, kwargs
        rest = dict(kwargs)
        for name in list(rest):
            param = sig.parameters.get(name)
            if name in bound.arguments and param is not None:
                if param.kind is param.POSITIONAL_OR_KEYWORD:
                    bound.arguments[name] = rest.pop(name)
        return bound.args, {**bound.kwargs, **rest}
    return (
        request.args if args is None else args,
        request.kwargs if kwargs is None else kwargs,
    )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def exponential_backoff(factor: float, retries: int, maximum: float, full_jitter: bool) -> float:
    """Celery's retry_backoff: ``factor * 2**retries`` capped, full jitter when asked."""
    countdown = min(maximum, factor * (2**retries))
    if full_jitter:
        countdown = random.randrange(int(countdown) + 1)
    return max(0, countdown)


class _FromConfig:
    """A task attribute that reads the app's setting while the task does not set its own.

    Celery binds ``ignore_result``, ``track_started`` and friends from ``task_*`` settings
    when a task is bound; a value set on the task class, the decorator or the instance wins.
    """

    def __init__(self, setting: str, default: Any) -> None:
        self.setting = setting
        self.default = default

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        app = getattr(obj if obj is not None else owner, "app", None)
        if app is None:
            return self.default
        value = app.conf.get(self.setting)
        return self.default if value is None else value


def actual_ignore_result(task: Any, request: Any) -> bool:
    """The request's ``ignore_result`` when the message set one, else the task's."""
    value = getattr(request, "__dict__", {}).get("ignore_result") if request is not None else None
    return bool(task.ignore_result if value is None else value)


class Task:
    """A task type. One instance per task; ``self.request`` is per call and per thread."""

    name: str = None  # type: ignore[assignment]
    app: Any = None
    typing = True
    max_retries: int | None = 3
    default_retry_delay: float = 3 * 60
    rate_limit: Any = None
    ignore_result: Any = _FromConfig("task_ignore_result", False)
    trail = True
    send_events = True
    store_errors_even_if_ignored = False
    serializer: str | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    acks_late: bool | None = None
    acks_on_failure_or_timeout: bool | None = None
    reject_on_worker_lost: bool | None = None
    track_started: Any = _FromConfig("task_track_started", False)
    expires: Any = None
    priority: int | None = None
    queue: str | None = None
    resultrepr_maxsize = 1024
    autoretry_for: tuple[type[BaseException], ...] = ()
    dont_autoretry_for: tuple[type[BaseException], ...] = ()
    retry_kwargs: dict[str, Any] = {}
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600
    retry_jitter = True
    abstract = True
    _bound = False

    MaxRetriesExceededError = MaxRetriesExceededError

    # -- identity ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<@task: {self.name} of {self.app.main if self.app else '?'}>"

    @property
    def request(self) -> Context:
        req = _state.top_request(self)
        return req if req is not None else Context()

    def push_request(self, *args: Any, **kwargs: Any) -> None:
        _state.push_request(self, Context(*args, **kwargs))

    def pop_request(self) -> None:
        _state.pop_request(self)

    @property
    def backend(self) -> Any:
        return self.app.backend

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("Tasks must define the run method.")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling the task runs it directly, in this process, as in Celery."""
        _state.push_task(self)
        pushed = _state.top_request(self) is None
        if pushed:
            self.push_request(args=args, kwargs=kwargs)
        try:
            return self.run(*args, **kwargs)
        finally:
            if pushed:
                self.pop_request()
            _state.pop_task()

    # -- sending ----------------------------------------------------------------------------

    def check_arguments(self, args: Any, kwargs: Any) -> None:
        """Raise TypeError at the call site for arguments that do not fit (``typing=True``).

        The check calls a body-less stand-in with the task's signature, so the message is
        Python's own (``add() missing 1 required positional argument: 'y'``), as in Celery.
        """
        stub = type(self).__dict__.get("_argument_stub")
        if stub is None:
            fun = type(self).__dict__.get("__wrapped__") or self.run
            stub = staticmethod(_argument_stub(fun, self._bound))
            type.__setattr__(type(self), "_argument_stub", stub)
        stub.__func__(*(args or ()), **(kwargs or {}))

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        shadow: str | None = None,
        **options: Any,
    ) -> Any:
        if self.typing:
            try:
                self.check_arguments(args, kwargs)
            except TypeError as exc:
                raise TypeError(str(exc)) from None
        app = self.app
        if app.conf.task_always_eager:
            return self.apply(
                args,
                kwargs,
                task_id=task_id or str(uuid.uuid4()),
                link=link,
                link_error=link_error,
                **options,
            )
        for attr in ("queue", "priority", "expires", "serializer", "time_limit", "soft_time_limit"):
            value = getattr(self, attr, None)
            if value is not None and options.get(attr) is None:
                options[attr] = value
        options.setdefault("ignore_result", bool(self.ignore_result))
        dump = type(self).__dict__.get("_dump_arguments")
        if dump is not None and options.get("serializer") != "pickle":
            args, kwargs = dump.__func__(args, kwargs)
        return app.send_task(
            self.name,
            args,
            kwargs,
            task_id=task_id,
            link=link,
            link_error=link_error,
            shadow=shadow,
            task_type=self,
            **options,
        )

    def apply(
        self,
        args: Any = None,
        kwargs: Any = None,
        link: Any = None,
        link_error: Any = None,
        task_id: str | None = None,
        retries: int | None = None,
        throw: bool | None = None,
        **options: Any,
    ) -> Any:
        """Run the task here and now, returning an EagerResult (eager mode, tests)."""
        from ..result import EagerResult
        from .trace import run_task

        app = self.app
        task_id = task_id or str(uuid.uuid4())
        throw = app.conf.task_eager_propagates if throw is None else throw
        parent = _state.get_current_task()
        parent_request = parent.request if parent is not None else None
        if parent_request is not None and parent_request.id:
            parent_id = options.get("parent_id") or parent_request.id
            root_id = options.get("root_id") or parent_request.root_id or task_id
        else:
            parent_id, root_id = options.get("parent_id"), options.get("root_id") or task_id
        request = Context(
            id=task_id,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            retries=retries or 0,
            is_eager=True,
            called_directly=False,
            delivery_info={"is_eager": True},
            hostname=app.hostname_for_eager(),
            root_id=root_id,
            parent_id=parent_id,
            headers=options.get("headers"),
            callbacks=link if link is None or isinstance(link, list) else [link],
            errbacks=link_error
            if link_error is None or isinstance(link_error, list)
            else [link_error],
            task=self.name,
            ignore_result=options.get("ignore_result"),
            chain=options.get("chain"),
            chord=options.get("chord"),
            group=options.get("group_id"),
            group_index=options.get("group_index"),
            replaced_task_nesting=options.get("replaced_task_nesting") or 0,
        )
        outcome = run_task(self, request, list(args or ()), dict(kwargs or {}), eager=True)
        if throw and outcome.state in states.EXCEPTION_STATES and outcome.exception is not None:
            raise outcome.exception
        if outcome.state == states.RETRY and outcome.retry is not None and throw:
            raise outcome.retry
        return EagerResult(
            task_id,
            outcome.retval if outcome.state == states.SUCCESS else outcome.exception,
            outcome.state,
            traceback=outcome.traceback,
            name=self.name,
            app=app,
        )

    def AsyncResult(self, task_id: str, **kwargs: Any) -> Any:  # noqa: N802 - Celery's name
        return self.app.AsyncResult(task_id, task_name=self.name, **kwargs)

    def signature(self, args: Any = None, *starargs: Any, **starkwargs: Any) -> Any:
        from ..canvas import signature

        starkwargs.setdefault("app", self.app)
        return signature(self, args, *starargs, **starkwargs)

    subtask = signature

    def s(self, *args: Any, **kwargs: Any) -> Any:
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Any:
        return self.signature(args, kwargs, immutable=True)

    def map(self, it: Any) -> Any:
        """One task that calls this task on each item, in one worker (``celery.map``)."""
        from ..canvas import xmap

        return xmap(self.s(), it, app=self.app)

    def starmap(self, it: Any) -> Any:
        """One task that calls this task with each item's arguments (``celery.starmap``)."""
        from ..canvas import xstarmap

        return xstarmap(self.s(), it, app=self.app)

    def chunks(self, it: Any, n: int) -> Any:
        """Split ``it`` into chunks of ``n`` argument tuples, one starmap task per chunk."""
        from ..canvas import chunks

        return chunks(self.s(), it, n, app=self.app)

    # -- retrying ---------------------------------------------------------------------------

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Schedule this call again (same task id, retries + 1) and raise ``Retry``."""
        request = self.request
        retries = request.retries
        if request.called_directly:
            if exc is not None:
                raise exc
            raise Retry("Task can be retried", None)
        if max_retries is None:
            max_retries = self.max_retries
        if max_retries is not None and retries >= max_retries:
            if exc is not None:
                raise exc
            raise self.MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{request.args} "
                f"kwargs:{request.kwargs}",
                task_args=request.args,
                task_kwargs=request.kwargs,
            )
        if eta is None and countdown is None:
            countdown = self.default_retry_delay
        when: Any = eta if eta is not None else countdown
        if eta is None and countdown is not None:
            eta = datetime.now(timezone.utc) + timedelta(seconds=float(countdown))
        new_args, new_kwargs = _retry_arguments(self, request, args, kwargs)
        plan = {
            "args": list(new_args or ()),
            "kwargs": dict(new_kwargs or {}),
            "eta": eta,
            "retries": retries + 1,
            "options": options,
        }
        if request.is_eager:
            # Celery re-runs an eager retry at once, in process.
            options = {**options, "retries": retries + 1}
            sig = self.signature(plan["args"], plan["kwargs"], **{})
            result = self.apply(plan["args"], plan["kwargs"], task_id=request.id, **options)
            ret = Retry(exc=exc, when=when, is_eager=True, sig=sig)
            ret.eager_result = result  # type: ignore[attr-defined]
            if throw:
                raise ret
            return ret
        ret = Retry(exc=exc, when=when, sig=None)
        ret.plan = plan  # type: ignore[attr-defined]
        if throw:
            raise ret
        return ret

    # -- state and hooks ------------------------------------------------------------------

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None, **kwargs: Any
    ) -> None:
        """Store a custom state (progress bars) visible through AsyncResult.state/.info."""
        task_id = task_id or self.request.id
        if task_id is None:
            return
        self.app.store_result(task_id, meta, state or states.PENDING, request=self.request)

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        """Called before the task body runs."""

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        """Called when the task body returned."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Called when the task body raised."""

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Called when the task is retried."""

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Called after the task returned, whatever the outcome."""

    def send_event(self, type_: str, retry: bool = True, **fields: Any) -> None:
        """Task events are not emitted (``-E`` is accepted and ignored)."""

    def replace(self, sig: Any) -> Any:
        """Replace this running task by ``sig``, which inherits its id and its place: its
        callbacks and errbacks, the rest of its chain and its chord membership."""
        from ..canvas import _chain, group, signature
        from ..exceptions import ImproperlyConfigured

        request = self.request
        if "chord" in sig.options:
            raise ImproperlyConfigured("A signature replacing a task must not be part of a chord")
        if isinstance(sig, _chain) and not sig.tasks:
            raise ImproperlyConfigured("Cannot replace with an empty chain")
        accumulate = self.app.tasks["celery.accumulate"]
        if isinstance(sig, group):
            sig = sig | accumulate.s(index=0)
        if isinstance(sig, _chain) and isinstance(sig.tasks[-1], group):
            tasks = list(sig.tasks)
            tasks[-1] = tasks[-1] | accumulate.s(index=0)
            sig.tasks = tasks
        for callback in _as_list(request.callbacks):
            sig.link(callback)
        for errback in _as_list(request.errbacks):
            sig.link_error(errback)
        if isinstance(sig, _chain) and "link" in sig.options:
            sig.tasks[-1].options.setdefault("link", []).extend(_as_list(sig.options.pop("link")))
        sig.freeze(request.id)
        nesting = (request.get("replaced_task_nesting") or 0) + 1
        sig.set(
            chord=request.chord,
            group_id=request.group,
            group_index=request.group_index,
            root_id=request.root_id,
            replaced_task_nesting=nesting,
        )
        if isinstance(sig, _chain):
            for task in sig.tasks:
                task.set(replaced_task_nesting=nesting)
        for step in reversed(request.chain or []):
            sig |= signature(step, app=self.app).set(replaced_task_nesting=nesting)
        return self.on_replace(sig)

    def on_replace(self, sig: Any) -> Any:
        """Send (or, eagerly, run) the replacement; a worker then drops this call."""
        from ..exceptions import Ignore

        if self.request.is_eager:
            return sig.apply().get()
        # the first task sent may have this running call's id: it takes over its record
        sig.apply_async(replace=True)
        raise Ignore("Replaced by new task")

    def add_to_chord(self, sig: Any, lazy: bool = False) -> Any:
        """Add ``sig`` to the chord this task is a member of (the body waits for it too)."""
        from ..worker import chords

        request = self.request
        if not request.chord:
            raise ValueError("Current task is not member of any chord")
        sig.set(
            group_id=request.group,
            group_index=request.group_index,
            chord=request.chord,
            root_id=request.root_id,
        )
        result = sig.freeze()
        chords.add_to_chord(self.app, cast(str, request.group))  # a chord member has a group
        return sig.delay() if not lazy else result
