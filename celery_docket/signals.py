"""Signals: the observer API of ``celery.signals`` / ``celery.utils.dispatch.Signal``.

Receivers written for Celery (``@task_prerun.connect``, ``sender=`` filters,
``dispatch_uid``, weak references) work unchanged. As in Celery, :meth:`Signal.send`
never lets a receiver's exception escape: it is logged and returned in the result list,
so a broken handler cannot fail a task or stop a worker.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from .exceptions import CDeprecationWarning
from .utils.log import get_logger

__all__ = (
    "Signal",
    "before_task_publish",
    "after_task_publish",
    "task_internal_error",
    "task_prerun",
    "task_postrun",
    "task_success",
    "task_received",
    "task_rejected",
    "task_unknown",
    "task_retry",
    "task_failure",
    "task_revoked",
    "celeryd_init",
    "celeryd_after_setup",
    "import_modules",
    "worker_init",
    "worker_before_create_process",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
    "heartbeat_sent",
    "setup_logging",
    "after_setup_logger",
    "after_setup_task_logger",
    "beat_init",
    "beat_embedded_init",
    "user_preload_options",
)

logger = get_logger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Back-off for ``connect(retry=True)`` receivers, in seconds (start, step, cap).
RETRY_INTERVAL_START = 2.0
RETRY_INTERVAL_STEP = 2.0
RETRY_INTERVAL_MAX = 30.0
_sleep = time.sleep  # indirection so tests can skip the real back-off


def _make_id(target: Any) -> Hashable:
    """Key identifying a receiver or sender.

    Strings and bytes match by value (so ``sender="tasks.add"`` works), bound methods
    by (instance, function) and anything else by identity, as in Celery.
    """
    if callable(getattr(type(target), "_get_current_object", None)):
        target = target._get_current_object()  # unwrap lazy proxies to the real object
    if isinstance(target, (str, bytes)):
        return target
    if hasattr(target, "__func__"):
        return (id(getattr(target, "__self__", None)), id(target.__func__))
    return id(target)


NONE_ID = _make_id(None)


def _lookup_key(receiver: Any, sender: Any, dispatch_uid: Hashable | None) -> tuple[Any, Any]:
    if dispatch_uid:
        return (dispatch_uid, _make_id(sender))
    if hasattr(receiver, "_dispatch_uid"):  # retry wrapper: keyed as the wrapped function
        return (receiver._dispatch_uid, _make_id(sender))
    return (_make_id(receiver), _make_id(sender))


def _accepts_kwargs(fun: Callable[..., Any]) -> bool:
    code = getattr(fun, "__code__", None)
    if code is not None:
        return bool(code.co_flags & inspect.CO_VARKEYWORDS)
    params = inspect.signature(fun).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _retrying(fun: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fun`` so it is called again, with growing delays, until it succeeds."""

    @functools.wraps(fun)
    def receiver(*args: Any, **kwargs: Any) -> Any:
        delay = RETRY_INTERVAL_START
        while True:
            try:
                return fun(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a receiver may raise anything; Celery retries it the same way
                logger.error(
                    "Could not process signal receiver %r (%r). Retrying in %ss...",
                    fun,
                    exc,
                    delay,
                )
                _sleep(delay)
                delay = min(delay + RETRY_INTERVAL_STEP, RETRY_INTERVAL_MAX)

    return receiver


class Signal:
    """A named event that receivers subscribe to and senders fire.

    Arguments:
        providing_args: names of the keyword arguments sent (documentation only).
        use_caching: accepted for Celery compatibility; lookups are not cached.
        name: the signal's name, used in ``repr()``.

    :attr:`receivers` is a list of ``((receiver_key, sender_key), receiver)`` where
    ``receiver`` is a weak reference unless connected with ``weak=False``. Code that
    checks ``if signal.receivers:`` before sending (as Celery's worker does) works.
    """

    receivers: list[tuple[tuple[Any, Any], Any]]

    def __init__(
        self,
        providing_args: Any = None,
        use_caching: bool = False,
        name: str | None = None,
    ) -> None:
        self.receivers = []
        self.providing_args = set(providing_args if providing_args is not None else [])
        self.use_caching = use_caching
        self.name = name
        self.lock = threading.Lock()
        self._dead_receivers = False

    # -- connecting ----------------------------------------------------------------------

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        """Subscribe a receiver; usable directly or as a decorator.

        Forms: ``sig.connect(fn, sender=None, weak=True, dispatch_uid=None,
        retry=False)``, ``@sig.connect`` and ``@sig.connect(sender=...)``.
        Returns the receiver (the retrying wrapper when ``retry=True``), so the
        decorator leaves the function usable.

        ``weak``: hold only a weak reference, so connecting never keeps an object alive.
        ``dispatch_uid``: connect at most once per uid and sender (e.g. on re-import).
        ``retry``: call the receiver again until it succeeds; implies ``weak=False``.
        """
        if args and callable(args[0]):
            return self._connector(*args[1:], **kwargs)(args[0])
        receiver = kwargs.pop("receiver", None)
        decorator = self._connector(*args, **kwargs)
        return decorator if receiver is None else decorator(receiver)

    def _connector(
        self,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
        retry: bool = False,
    ) -> Callable[[F], F]:
        def connect_receiver(fun: F) -> F:
            uid = dispatch_uid
            if retry:
                self._check_receiver(fun)
                if not uid:
                    uid = _make_id(fun)  # so disconnect(fun) finds the wrapper
                wrapper: Any = _retrying(fun)
                wrapper._dispatch_uid = uid
                self._connect_signal(wrapper, sender, False, uid)
                return wrapper
            self._connect_signal(fun, sender, weak, uid)
            return fun

        return connect_receiver

    @staticmethod
    def _check_receiver(receiver: Any) -> None:
        if not callable(receiver):
            raise TypeError("Signal receivers must be callable")
        if not _accepts_kwargs(receiver):
            raise ValueError("Signal receiver must accept keyword arguments.")

    def _connect_signal(
        self, receiver: Any, sender: Any, weak: bool, dispatch_uid: Hashable | None
    ) -> None:
        self._check_receiver(receiver)
        key = _lookup_key(receiver, sender, dispatch_uid)
        stored: Any = receiver
        if weak:
            is_bound = hasattr(receiver, "__self__") and hasattr(receiver, "__func__")
            ref_type = weakref.WeakMethod if is_bound else weakref.ref
            stored = ref_type(receiver, self._mark_dead)
        with self.lock:
            self._clear_dead_receivers()
            if all(existing != key for existing, _ in self.receivers):
                self.receivers.append((key, stored))

    def disconnect(
        self,
        receiver: Any = None,
        sender: Any = None,
        weak: bool | None = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Unsubscribe by receiver (or ``dispatch_uid``) and sender; True if one was found."""
        if weak is not None:
            warnings.warn(
                "Passing `weak` to disconnect has no effect.", CDeprecationWarning, stacklevel=2
            )
        key = _lookup_key(receiver, sender, dispatch_uid)
        with self.lock:
            self._clear_dead_receivers()
            for index, (existing, _) in enumerate(self.receivers):
                if existing == key:
                    del self.receivers[index]
                    return True
        return False

    # -- sending -------------------------------------------------------------------------

    def has_listeners(self, sender: Any = None) -> bool:
        """Whether any live receiver would get a signal from ``sender``."""
        return bool(self._live_receivers(sender))

    def send(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        """Call every matching receiver as ``receiver(signal=self, sender=sender, **named)``.

        Returns ``[(receiver, response), ...]``; a receiver that raised has its
        exception as the response (and it is logged), so one bad handler cannot
        break the caller or starve the handlers after it.
        """
        responses: list[tuple[Any, Any]] = []
        if not self.receivers:
            return responses
        for receiver in self._live_receivers(sender):
            try:
                response = receiver(signal=self, sender=sender, **named)
            except Exception as exc:
                logger.exception("Signal handler %r raised: %r", receiver, exc)
                responses.append((receiver, exc))
            else:
                responses.append((receiver, response))
        return responses

    def send_robust(self, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
        """Same as :meth:`send` (which is already robust); kept for Django-style callers."""
        return self.send(sender, **named)

    # -- internals -----------------------------------------------------------------------

    def _live_receivers(self, sender: Any) -> list[Any]:
        sender_key = _make_id(sender)
        with self.lock:
            self._clear_dead_receivers()
            matching = [
                receiver
                for (_, r_sender), receiver in self.receivers
                if r_sender == NONE_ID or r_sender == sender_key
            ]
        live = []
        for receiver in matching:
            if isinstance(receiver, weakref.ref):
                receiver = receiver()
                if receiver is None:
                    continue
            live.append(receiver)
        return live

    def _mark_dead(self, _ref: Any = None) -> None:
        # Runs from garbage collection, possibly while self.lock is held by this very
        # thread, so it only sets a flag; cleanup happens under the lock later.
        self._dead_receivers = True

    def _clear_dead_receivers(self) -> None:
        # Caller holds self.lock.
        if self._dead_receivers:
            self._dead_receivers = False
            self.receivers[:] = [
                entry
                for entry in self.receivers
                if not (isinstance(entry[1], weakref.ref) and entry[1]() is None)
            ]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name} providing_args={self.providing_args!r}>"

    __str__ = __repr__


def _signal(name: str, providing_args: set[str] | None, doc: str) -> Signal:
    """Create one of the built-in signals, carrying its documentation."""
    sig = Signal(name=name, providing_args=providing_args)
    sig.__doc__ = doc
    return sig


# -- Task ----------------------------------------------------------------------------------

before_task_publish = _signal(
    "before_task_publish",
    {"body", "exchange", "routing_key", "headers", "properties", "declare", "retry_policy"},
    """Sent by the client just before a task message is published.

    sender: the task name (str). Keyword arguments: ``body``, ``exchange``,
    ``routing_key``, ``headers``, ``properties``, ``declare``, ``retry_policy``.
    Receivers may mutate ``headers``/``properties`` to change the message.
    """,
)
after_task_publish = _signal(
    "after_task_publish",
    {"body", "exchange", "routing_key"},
    """Sent by the client once a task message has been published.

    sender: the task name (str). Keyword arguments: ``body``, ``headers``,
    ``exchange``, ``routing_key``.
    """,
)
task_received = _signal(
    "task_received",
    {"request"},
    """Sent by the worker when a task message is received, before it is scheduled.

    sender: the consumer. Keyword arguments: ``request`` (the worker's Request).
    """,
)
task_prerun = _signal(
    "task_prerun",
    {"task_id", "task", "args", "kwargs"},
    """Sent in the worker just before a task runs.

    sender: the task object. Keyword arguments: ``task_id``, ``task``, ``args``, ``kwargs``.
    """,
)
task_postrun = _signal(
    "task_postrun",
    {"task_id", "task", "args", "kwargs", "retval"},
    """Sent in the worker after a task ran, whatever the outcome.

    sender: the task object. Keyword arguments: ``task_id``, ``task``, ``args``,
    ``kwargs``, ``retval`` (return value or exception), ``state`` (final state name).
    """,
)
task_success = _signal(
    "task_success",
    {"result", "runtime"},
    """Sent in the worker when a task succeeded.

    sender: the task object. Keyword arguments: ``result``, ``runtime`` (seconds).
    """,
)
task_retry = _signal(
    "task_retry",
    {"request", "reason", "einfo"},
    """Sent in the worker when a task will be retried.

    sender: the task object. Keyword arguments: ``request`` (the task's request
    context), ``reason`` (the exception or message), ``einfo`` (exception info).
    """,
)
task_failure = _signal(
    "task_failure",
    {"task_id", "exception", "args", "kwargs", "traceback", "einfo"},
    """Sent in the worker when a task failed.

    sender: the task object. Keyword arguments: ``task_id``, ``exception``, ``args``,
    ``kwargs``, ``traceback``, ``einfo``.
    """,
)
task_internal_error = _signal(
    "task_internal_error",
    {"task_id", "args", "kwargs", "request", "exception", "traceback", "einfo"},
    """Sent in the worker when the machinery around a task (not the task) raised.

    sender: the task object. Keyword arguments: ``task_id``, ``args``, ``kwargs``,
    ``request``, ``exception``, ``traceback``, ``einfo``.
    """,
)
task_revoked = _signal(
    "task_revoked",
    {"request", "terminated", "signum", "expired"},
    """Sent in the worker when a task is revoked or expires before running.

    sender: the task object. Keyword arguments: ``request``, ``terminated`` (bool),
    ``signum`` (signal used to terminate, or None), ``expired`` (bool).
    """,
)
task_rejected = _signal(
    "task_rejected",
    {"message", "exc"},
    """Sent in the worker when a message of an unknown type arrives on a task queue.

    sender: the consumer. Keyword arguments: ``message``, ``exc`` (or None).
    """,
)
task_unknown = _signal(
    "task_unknown",
    {"message", "exc", "name", "id"},
    """Sent in the worker when a message names a task that is not registered.

    sender: the consumer. Keyword arguments: ``name``, ``id``, ``message``,
    ``exc`` (the NotRegistered error).
    """,
)

# -- Worker --------------------------------------------------------------------------------

celeryd_init = _signal(
    "celeryd_init",
    {"instance", "conf", "options"},
    """First signal of ``worker`` startup; adjust configuration per worker here.

    sender: the worker's node name (str). Keyword arguments: ``instance`` (the
    worker), ``conf`` (the app configuration), ``options`` (command-line options).
    """,
)
celeryd_after_setup = _signal(
    "celeryd_after_setup",
    {"instance", "conf"},
    """Sent after the worker is set up but before it consumes; e.g. to add queues.

    sender: the worker's node name (str). Keyword arguments: ``instance``, ``conf``.
    """,
)
import_modules = _signal(
    "import_modules",
    None,
    """Sent when the app imports task modules (``include``/``imports``/autodiscovery).

    sender: the app. No keyword arguments.
    """,
)
worker_init = _signal(
    "worker_init",
    None,
    """Sent before the worker starts. sender: the worker. No keyword arguments.""",
)
worker_before_create_process = _signal(
    "worker_before_create_process",
    None,
    """Sent in the parent just before a pool child process is created.

    sender: the pool. No keyword arguments.
    """,
)
worker_process_init = _signal(
    "worker_process_init",
    None,
    """Sent in each pool child process as it starts; open per-process resources here.

    sender: the worker's node name. No keyword arguments.
    """,
)
worker_process_shutdown = _signal(
    "worker_process_shutdown",
    None,
    """Sent in each pool child process just before it exits.

    sender: the worker's node name. Keyword arguments: ``pid``, ``exitcode``.
    """,
)
worker_ready = _signal(
    "worker_ready",
    None,
    """Sent when the worker is ready to accept work. sender: the consumer.""",
)
worker_shutting_down = _signal(
    "worker_shutting_down",
    None,
    """Sent in the main process when shutdown begins.

    sender: the worker's node name. Keyword arguments: ``sig`` (the signal received),
    ``how`` (``"Warm"``/``"Cold"``), ``exitcode``.
    """,
)
worker_shutdown = _signal(
    "worker_shutdown",
    None,
    """Sent when the worker is about to shut down. sender: the worker.""",
)
heartbeat_sent = _signal(
    "heartbeat_sent",
    None,
    """Sent each time the worker sends a heartbeat. sender: the heart object.""",
)

# -- Logging -------------------------------------------------------------------------------

setup_logging = _signal(
    "setup_logging",
    {"loglevel", "logfile", "format", "colorize"},
    """Sent before logging is configured; if anyone is connected, the default
    logging setup is skipped so the receiver can configure it instead.

    sender: None. Keyword arguments: ``loglevel``, ``logfile``, ``format``, ``colorize``.
    """,
)
after_setup_logger = _signal(
    "after_setup_logger",
    {"logger", "loglevel", "logfile", "format", "colorize"},
    """Sent after each global logger is set up, so handlers can be added.

    sender: None. Keyword arguments: ``logger``, ``loglevel``, ``logfile``,
    ``format``, ``colorize``.
    """,
)
after_setup_task_logger = _signal(
    "after_setup_task_logger",
    {"logger", "loglevel", "logfile", "format", "colorize"},
    """Sent after the task logger is set up.

    sender: None. Keyword arguments: ``logger``, ``loglevel``, ``logfile``,
    ``format``, ``colorize``.
    """,
)

# -- Beat ----------------------------------------------------------------------------------

beat_init = _signal(
    "beat_init",
    None,
    """Sent when ``beat`` starts (standalone or embedded). sender: the beat Service.""",
)
beat_embedded_init = _signal(
    "beat_embedded_init",
    None,
    """Sent, besides ``beat_init``, when beat runs embedded in a worker (``-B``).

    sender: the beat Service.
    """,
)

# -- Programs ------------------------------------------------------------------------------

user_preload_options = _signal(
    "user_preload_options",
    {"app", "options"},
    """Sent after the CLI parsed the app's user-defined preload options.

    sender: the command. Keyword arguments: ``app``, ``options`` (parsed values).
    """,
)
