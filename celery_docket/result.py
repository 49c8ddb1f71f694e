"""Task results: ``AsyncResult``, ``EagerResult``, ``ResultSet``, ``GroupResult``.

Results live in Celery's Redis layout (``celery-task-meta-<id>`` plus a pub/sub notice), so
``get()`` blocks on the notice and never sleep-polls, and never waits past its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from . import _state, states
from .backends.store import Backend
from .engine import ResultTimeout
from .exceptions import TaskRevokedError, TimeoutError
from .protocol import decode_result_meta

allow_join_result = _state.allow_join_result
denied_join_result = _state.denied_join_result


@contextmanager
def _typed_connection_errors(task_id: str) -> Iterator[None]:
    """Redis down while reading a result: BrokerUnavailable (a kombu OperationalError, as
    Celery code catches), not redis-py's own ConnectionError."""
    import redis

    from .exceptions import BrokerUnavailable

    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"cannot read the result of {task_id}: {exc}") from exc


def _assert_will_not_block() -> None:
    if _state.get_current_worker_task() is not None and not _state.join_allowed():
        raise RuntimeError(
            "Never call result.get() within a task!\n"
            "See https://docs.celeryq.dev/en/latest/userguide/tasks.html"
            "#avoid-launching-synchronous-subtasks"
        )


def _meta_field(key: str, doc: str) -> Any:
    """A read-only attribute backed by one field of the stored result meta."""
    return property(lambda self: self._meta().get(key), doc=doc)


class AsyncResult:
    """A task's result by id, read from the result store."""

    def __init__(
        self,
        id: str,  # noqa: A002 - Celery's argument name
        backend: Any = None,
        task_name: str | None = None,
        app: Any = None,
        parent: Any = None,
    ) -> None:
        if id is None:
            raise ValueError(f"AsyncResult requires valid id, not {type(id)}")
        self.id = id
        self.app = app or _state.get_current_app()
        self.backend = backend or Backend(self.app)
        self.task_name = task_name
        self.parent = parent
        self._cache: dict[str, Any] | None = None

    #: sent with ``ignore_result=True``: ``get()`` returns ``None`` at once, as in Celery
    ignored = False

    task_id = property(lambda self: self.id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __reduce__(self) -> Any:
        return (type(self), (self.id, None, self.task_name, None, self.parent))

    def as_tuple(self) -> Any:
        parent = self.parent
        return (self.id, parent.as_tuple() if parent is not None else None), None

    # -- reading --------------------------------------------------------------------------

    def _decode(self, raw: bytes | None) -> dict[str, Any]:
        if raw is None:
            return {
                "status": states.PENDING,
                "result": None,
                "traceback": None,
                "children": None,
                "date_done": None,
                "task_id": self.id,
            }
        conf = self.app.conf
        return decode_result_meta(
            raw,
            accept=conf.result_accept_content or conf.accept_content,
            serializer=conf.result_serializer,
        )

    def _meta(self) -> dict[str, Any]:
        if self._cache is not None:
            return self._cache
        with _typed_connection_errors(self.id):
            raw = self.app.results.get(self.id)
        meta = self._decode(raw)
        if meta["status"] in states.READY_STATES:
            self._cache = meta
        return meta

    @property
    def state(self) -> str:
        return str(self._meta()["status"])

    status = state

    @property
    def result(self) -> Any:
        return self._meta().get("result")

    info = result

    @property
    def traceback(self) -> str | None:
        return self._meta().get("traceback")

    @property
    def date_done(self) -> datetime | None:
        value = self._meta().get("date_done")
        return datetime.fromisoformat(value) if isinstance(value, str) else value

    children = _meta_field("children", "Results of tasks this one sent")
    name = _meta_field("name", "Task name (with result_extended)")
    args = _meta_field("args", "Positional arguments (with result_extended)")
    kwargs = _meta_field("kwargs", "Keyword arguments (with result_extended)")
    worker = _meta_field("worker", "Node that ran it (with result_extended)")
    retries = _meta_field("retries", "Retries so far (with result_extended)")
    queue = _meta_field("queue", "Queue it was delivered from (with result_extended)")

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        no_ack: bool = True,
        follow_parents: bool = True,
        callback: Any = None,
        on_message: Any = None,
        on_interval: Any = None,
        disable_sync_subtasks: bool = True,
        EXCEPTION_STATES: Any = states.EXCEPTION_STATES,  # noqa: N803 - Celery's name
        PROPAGATE_STATES: Any = states.PROPAGATE_STATES,  # noqa: N803 - Celery's name
    ) -> Any:
        """Wait for the task to be ready and return its value (or raise its exception)."""
        if self.ignored:
            return None
        if disable_sync_subtasks:
            _assert_will_not_block()
        if follow_parents and propagate:
            self._raise_parent_error()
        if self._cache is None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                # wait in slices so a failed parent (a chain step, a chord header) surfaces
                # instead of waiting out the timeout for a task that will never run
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.app.results.unwatch(self.id)
                    raise TimeoutError("The operation timed out.")
                slice_ = 1.0 if remaining is None else min(remaining, 1.0)
                try:
                    with _typed_connection_errors(self.id):
                        raw = self.app.results.wait(
                            self.id,
                            slice_,
                            is_final=lambda v: self._decode(v)["status"] in states.READY_STATES,
                        )
                    break
                except ResultTimeout:
                    if follow_parents and propagate and self.parent is not None:
                        self._raise_parent_error()
            self._cache = self._decode(raw)
        if follow_parents and propagate and self._cache["status"] in states.PROPAGATE_STATES:
            self._raise_parent_error()
        meta = self._cache
        if on_message is not None:
            on_message(meta)
        if callback is not None:
            callback(self.id, meta.get("result"))
        state, value = meta["status"], meta.get("result")
        if propagate and state in PROPAGATE_STATES:
            if state == states.REVOKED and not isinstance(value, BaseException):
                raise TaskRevokedError(self.id)
            if isinstance(value, BaseException):
                raise value
        return value

    wait = get

    def _raise_parent_error(self) -> None:
        """Raise the error of the nearest failed ancestor, as Celery's follow_parents does."""
        node = self.parent
        chain = []
        while node is not None:
            chain.append(node)
            node = getattr(node, "parent", None)
        for ancestor in reversed(chain):
            for member in _leaves(ancestor):
                meta = member._meta()
                if meta["status"] in states.PROPAGATE_STATES:
                    value = meta.get("result")
                    if isinstance(value, BaseException):
                        raise value
                    raise TaskRevokedError(member.id)

    def forget(self) -> None:
        self._cache = None
        self.app.results.forget(self.id)

    def revoke(
        self,
        connection: Any = None,
        terminate: bool = False,
        signal: Any = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.app.control.revoke(self.id, terminate=terminate, signal=signal)

    def then(self, callback: Any, on_error: Any = None, weak: bool = False) -> None:
        raise NotImplementedError("AsyncResult.then is not supported by celery_docket")


def _leaves(result: Any) -> Iterator[AsyncResult]:
    """The task results inside ``result``: itself, or a (nested) group's members."""
    if isinstance(result, ResultSet):
        for member in result.results:
            yield from _leaves(member)
    else:
        yield result


class EagerResult(AsyncResult):
    """The result of ``apply()`` or eager mode: already known, never touches Redis."""

    def __init__(
        self,
        id: str,  # noqa: A002 - Celery's argument name
        ret_value: Any,
        state: str,
        traceback: Any = None,
        name: str | None = None,
        app: Any = None,
    ) -> None:
        self.id = id
        self._result = ret_value
        self._state = state
        self._traceback = traceback
        self.task_name = name
        self.parent = None
        self.app = app
        self._cache = None

    def __reduce__(self) -> Any:
        return (type(self), (self.id, self._result, self._state, self._traceback, self.task_name))

    @property
    def state(self) -> str:
        return self._state

    status = state

    @property
    def result(self) -> Any:
        return self._result

    info = result

    @property
    def traceback(self) -> Any:
        return self._traceback

    @property
    def name(self) -> str | None:
        return self.task_name

    def _meta(self) -> dict[str, Any]:
        return {
            "status": self._state,
            "result": self._result,
            "traceback": self._traceback,
            "task_id": self.id,
        }

    def ready(self) -> bool:
        return True

    # Celery's EagerResult.get takes these three by name and the rest as **kwargs
    def get(  # type: ignore[override]
        self,
        timeout: float | None = None,
        propagate: bool = True,
        disable_sync_subtasks: bool = True,
        **kwargs: Any,
    ) -> Any:
        if disable_sync_subtasks:
            _assert_will_not_block()
        if self.successful():
            return self._result
        if self._state in states.PROPAGATE_STATES and propagate:
            if isinstance(self._result, BaseException):
                raise self._result
            raise TaskRevokedError(self.id)
        return self._result

    wait = get  # type: ignore[assignment]  # as get above

    def forget(self) -> None:
        pass

    def revoke(self, *args: Any, **kwargs: Any) -> None:
        self._state = states.REVOKED


class ResultSet:
    """Several results handled as one."""

    def __init__(self, results: list[AsyncResult], app: Any = None, **kwargs: Any) -> None:
        self.results = list(results)
        self.app = app
        self._backend: Any = kwargs.get("backend")

    @property
    def backend(self) -> Any:
        """The result backend the members are read from (one per set, as in Celery)."""
        if self._backend is None:
            first = next(iter(self.results), None)
            found = getattr(first, "backend", None)
            self._backend = found or Backend(self.app or _state.get_current_app())
        return self._backend

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Any:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult:
        return self.results[index]

    def add(self, result: AsyncResult) -> None:
        if result not in self.results:
            self.results.append(result)

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        return not self.ready()

    def completed_count(self) -> int:
        return sum(1 for r in self.results if r.successful())

    def join(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        callback: Any = None,
        no_ack: bool = True,
        on_message: Any = None,
        disable_sync_subtasks: bool = True,
        **kwargs: Any,
    ) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            value = result.get(
                timeout=remaining, propagate=propagate, disable_sync_subtasks=disable_sync_subtasks
            )
            if callback is not None:
                callback(result.id, value)
            else:
                values.append(value)
        return values

    get = join

    def iter_native(
        self,
        timeout: float | None = None,
        interval: float = 0.5,
        no_ack: bool = True,
        on_message: Any = None,
        on_interval: Any = None,
    ) -> Iterator[tuple[str, Any]]:
        """(task id, meta) of each member as it becomes ready, read in batches (MGET)."""
        return self.backend.get_many(
            {r.id for r in self.results},
            timeout=timeout,
            interval=interval,
            on_message=on_message,
            on_interval=on_interval,
        )

    def join_native(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        callback: Any = None,
        no_ack: bool = True,
        on_message: Any = None,
        on_interval: Any = None,
        disable_sync_subtasks: bool = True,
    ) -> list[Any] | None:
        """``join()`` reading every member per round trip; ``timeout=0`` polls once."""
        if disable_sync_subtasks:
            _assert_will_not_block()
        position = {r.id: i for i, r in enumerate(self.results)}
        values: list[Any] = [None] * len(self.results)
        for task_id, meta in self.iter_native(timeout, interval, no_ack, on_message, on_interval):
            value = meta.get("result")
            if propagate and meta["status"] in states.PROPAGATE_STATES:
                if isinstance(value, BaseException):
                    raise value
                raise TaskRevokedError(task_id)
            if callback is not None:
                callback(task_id, value)
            else:
                values[position[task_id]] = value
        return None if callback is not None else values

    def forget(self) -> None:
        for r in self.results:
            r.forget()

    def revoke(self, **kwargs: Any) -> None:
        for r in self.results:
            r.revoke(**kwargs)


class GroupResult(ResultSet):
    """A group's results with the group id."""

    def __init__(
        self,
        id: str | None = None,  # noqa: A002 - Celery's argument name
        results: list[AsyncResult] | None = None,
        parent: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(results or [], **kwargs)
        self.id = id
        self.parent = parent

    @property
    def children(self) -> list[Any]:
        return self.results

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"

    def as_tuple(self) -> Any:
        parent = self.parent.as_tuple() if self.parent is not None else None
        return (self.id, parent), [r.as_tuple() for r in self.results]

    # Saved where Celery's Redis backend keeps them, so either side can restore them.
    _KEY = "celery-taskset-meta-"

    def save(self, backend: Any = None) -> GroupResult:
        """Store the group's member ids so ``GroupResult.restore(id)`` finds them later."""
        app = self.app or _state.get_current_app()
        from kombu.serialization import dumps

        _ct, _enc, payload = dumps({"result": self.as_tuple()}, serializer="json")
        ttl = app.result_ttl_ms()
        app.results.backend.client.set(f"{self._KEY}{self.id}", payload, px=ttl or None)
        return self

    def delete(self, backend: Any = None) -> None:
        app = self.app or _state.get_current_app()
        app.results.backend.client.delete(f"{self._KEY}{self.id}")

    @classmethod
    def restore(cls, id: str, backend: Any = None, app: Any = None) -> GroupResult | None:  # noqa: A002
        """The group saved under ``id``, or None."""
        from kombu.serialization import loads

        app = app or _state.get_current_app()
        raw = app.results.backend.client.get(f"{cls._KEY}{id}")
        if raw is None:
            return None
        meta = loads(raw, "application/json", "utf-8")
        return result_from_tuple(meta["result"], app=app)


def result_from_tuple(value: Any, app: Any = None) -> Any:
    """Rebuild a result (a group's too, with its members and parents) from ``as_tuple()``."""
    if isinstance(value, AsyncResult | ResultSet):
        return value
    (task_id, parent), members = value
    parent_result = result_from_tuple(parent, app=app) if parent else None
    if members is not None:
        results = [result_from_tuple(m, app=app) for m in members]
        return GroupResult(task_id, results, parent=parent_result, app=app)
    return AsyncResult(task_id, app=app, parent=parent_result)


__all__ = [
    "AsyncResult",
    "EagerResult",
    "GroupResult",
    "ResultSet",
    "allow_join_result",
    "denied_join_result",
    "result_from_tuple",
]
