"""Exceptions and warnings, named and shaped like ``celery.exceptions``.

Apps switch ``from celery.exceptions import X`` to ``from celery_docket.exceptions import X``
and keep their ``except`` clauses, so class hierarchy, constructor signatures, attributes,
``str()``/``repr()`` and pickling follow Celery 5.x.

Two bases are deliberately shared with Celery's own dependencies so mixed code keeps
catching the same errors: :class:`OperationalError` *is* ``kombu.exceptions.OperationalError``
and :class:`CeleryCommandException` derives from ``click.ClickException``.
The billiard-derived errors (time limits, lost workers) are our own plain ``Exception``
subclasses, since billiard is not a dependency here.
"""

from __future__ import annotations

import numbers
from types import TracebackType
from typing import Any, NoReturn

from click import ClickException
from kombu.exceptions import OperationalError

__all__ = (
    "reraise",
    "CeleryWarning",
    "AlwaysEagerIgnored",
    "DuplicateNodenameWarning",
    "DuplicateTaskNameWarning",
    "FixupWarning",
    "NotConfigured",
    "SecurityWarning",
    "CeleryError",
    "ImproperlyConfigured",
    "SecurityError",
    "OperationalError",
    "TaskPredicate",
    "Ignore",
    "Reject",
    "Retry",
    "TaskError",
    "QueueNotFound",
    "IncompleteStream",
    "NotRegistered",
    "AlreadyRegistered",
    "TimeoutError",
    "MaxRetriesExceededError",
    "TaskRevokedError",
    "InvalidTaskError",
    "ChordError",
    "BackendError",
    "BackendGetMetaError",
    "BackendStoreError",
    "SoftTimeLimitExceeded",
    "TimeLimitExceeded",
    "WorkerLostError",
    "Terminated",
    "CPendingDeprecationWarning",
    "CDeprecationWarning",
    "WorkerShutdown",
    "WorkerTerminate",
    "CeleryCommandException",
    "PayloadTooLarge",
    "BrokerUnavailable",
)


def reraise(
    tp: type[BaseException],
    value: BaseException | None,
    tb: TracebackType | None = None,
) -> NoReturn:
    """Raise ``value`` (or a new ``tp()``) carrying traceback ``tb``, as Celery's helper."""
    if value is None:
        value = tp()
    if value.__traceback__ is not tb:
        raise value.with_traceback(tb)
    raise value


def _safe_repr(obj: object) -> str:
    """``repr`` that never raises: Retry must be constructible from any failing exception."""
    try:
        return repr(obj)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not hide the retry
        return f"<Unrepresentable {type(obj)!r}: {exc!r}>"


# -- Warnings ------------------------------------------------------------------------------


class CeleryWarning(UserWarning):
    """Base class for all warnings we emit, so one filter silences them all."""


class AlwaysEagerIgnored(CeleryWarning):
    """``send_task`` ignores ``task_always_eager``: it is a name, not local code."""


class DuplicateNodenameWarning(CeleryWarning):
    """Two workers share a node name, so replies and control commands get mixed up."""


class DuplicateTaskNameWarning(CeleryWarning):
    """Two callables registered under one task name (see ``app/duplicates.py``)."""


class FixupWarning(CeleryWarning):
    """A framework fix-up (e.g. Django) could not be applied."""


class NotConfigured(CeleryWarning):
    """The app was used before any configuration was loaded."""


class SecurityWarning(CeleryWarning):
    """An insecure setting (such as pickle serialization) is in use."""


class CPendingDeprecationWarning(PendingDeprecationWarning):
    """Feature will be deprecated later; hidden by default like the builtin category."""


class CDeprecationWarning(DeprecationWarning):
    """Feature is deprecated and will be removed."""


# -- Core errors ---------------------------------------------------------------------------


class CeleryError(Exception):
    """Base class for errors raised by the task layer."""


class ImproperlyConfigured(CeleryError):
    """Configuration is invalid or inconsistent."""


class SecurityError(CeleryError):
    """A message failed signing/verification or the security setup is wrong."""


class TaskPredicate(CeleryError):
    """Base for exceptions that steer a task's outcome instead of reporting a bug."""


class Retry(TaskPredicate):
    """Raised by ``Task.retry()`` so the worker reschedules instead of failing.

    ``exc`` may be an exception (kept in :attr:`exc`) or a string (kept only in
    :attr:`excs`, with :attr:`exc` set to ``None``), matching Celery.
    """

    message: str | None
    exc: Any
    excs: str | None
    when: Any
    is_eager: bool
    sig: Any

    def __init__(
        self,
        message: str | None = None,
        exc: Any = None,
        when: Any = None,
        is_eager: bool = False,
        sig: Any = None,
    ) -> None:
        self.message = message
        if isinstance(exc, str):
            self.exc, self.excs = None, exc
        else:
            self.exc, self.excs = exc, (_safe_repr(exc) if exc else None)
        self.when = when
        self.is_eager = is_eager
        self.sig = sig
        # Celery stores the instance itself as args[0]; repr() depends on it.
        super().__init__(self, exc, when)

    def humanize(self) -> str:
        """Describe the retry time: ``in 5s`` for a countdown, ``at <when>`` otherwise."""
        if isinstance(self.when, numbers.Number):
            return f"in {self.when}s"
        return f"at {self.when}"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.excs:
            return f"Retry {self.humanize()}: {self.excs}"
        return f"Retry {self.humanize()}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Like Celery, ``is_eager`` and ``sig`` do not cross process boundaries. A string
        # ``exc`` is preserved (Celery drops it), which round-trips to the same state.
        exc = self.exc if self.exc is not None else self.excs
        return type(self), (self.message, exc, self.when)


class Ignore(TaskPredicate):
    """Task asks the worker to record no state and send no result."""


class Reject(TaskPredicate):
    """Task asks for its message to be rejected, optionally re-queued."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)

    def __repr__(self) -> str:
        return f"reject requeue={self.requeue}: {self.reason}"


class TaskError(CeleryError):
    """Base for errors about a specific task or its message."""


class QueueNotFound(KeyError, TaskError):
    """A queue name was used that is not defined and cannot be created."""


class IncompleteStream(TaskError):
    """A message body ended before it could be fully decoded."""


UNREGISTERED_FMT = "Task of kind {0} never registered, please make sure it's imported."


class NotRegistered(KeyError, TaskError):
    """No task is registered under the requested name."""

    def __repr__(self) -> str:
        return UNREGISTERED_FMT.format(self)


class AlreadyRegistered(TaskError):
    """A task with this name is registered already."""


class TimeoutError(TaskError):  # Celery's public name; shadows the builtin
    """Waiting for a result took longer than the given timeout."""


class MaxRetriesExceededError(TaskError):
    """``Task.retry()`` was called after ``max_retries`` was reached.

    Keeps the task's arguments so error handlers can log or re-submit them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.task_args = kwargs.pop("task_args", [])
        self.task_kwargs = kwargs.pop("task_kwargs", {})
        super().__init__(*args, **kwargs)


class TaskRevokedError(TaskError):
    """The task was revoked, so it has no result."""


class InvalidTaskError(TaskError):
    """A message did not describe a valid task."""


class ChordError(TaskError):
    """A chord header task failed, so the body cannot run."""


class BackendError(Exception):
    """Base for result-backend errors (not a CeleryError, as in Celery)."""


class BackendGetMetaError(BackendError):
    """Reading a task's stored state failed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.task_id = kwargs.get("task_id", "")
        super().__init__(*args)

    def __repr__(self) -> str:
        return f"{super().__repr__()} task_id:{self.task_id}"


class BackendStoreError(BackendError):
    """Storing a task's state failed (e.g. the value was too large)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state = kwargs.get("state", "")
        self.task_id = kwargs.get("task_id", "")
        super().__init__(*args)

    def __repr__(self) -> str:
        return f"{super().__repr__()} state:{self.state} task_id:{self.task_id}"


# -- Worker / pool errors (billiard's in Celery) -------------------------------------------


class SoftTimeLimitExceeded(Exception):
    """Raised inside a task when its soft time limit expires, so it can clean up."""

    def __str__(self) -> str:
        return f"SoftTimeLimitExceeded{self.args}"


class TimeLimitExceeded(Exception):
    """The task ran past its hard time limit and was killed."""

    def __str__(self) -> str:
        return f"TimeLimitExceeded{self.args}"


class WorkerLostError(Exception):
    """The process running the task exited before reporting a result."""


class Terminated(Exception):
    """The task was terminated (revoked with ``terminate=True``)."""


class WorkerShutdown(SystemExit):
    """Ask the worker to shut down gracefully."""


class WorkerTerminate(SystemExit):
    """Ask the worker to shut down immediately."""


# -- CLI -----------------------------------------------------------------------------------


class CeleryCommandException(ClickException):
    """A CLI error carrying its own process exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message=message)
        self.exit_code = exit_code  # type: ignore[misc]  # ClassVar in click, per-instance here

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.message, self.exit_code)


# -- celery_docket additions ---------------------------------------------------------------


class PayloadTooLarge(CeleryError):
    """A message exceeds the configured size limit.

    Raised at publish time rather than letting Redis accept a huge stream entry that
    slows every reader; ``size`` and ``limit`` are in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(size, limit)

    def __str__(self) -> str:
        return f"message is {self.size} bytes, above the {self.limit}-byte limit"


class BrokerUnavailable(OperationalError):
    """Redis could not be reached.

    Derives from kombu's ``OperationalError`` so code written for Celery that catches
    broker connection failures keeps catching ours.
    """
