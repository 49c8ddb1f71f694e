"""The ``Celery`` application: configuration, task registry, publishing, results."""

from __future__ import annotations

import importlib
import logging
import socket
import threading
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .. import _state, signals
from ..config import Settings
from ..engine import Docket
from ..engine.connection import connect
from ..engine.results import ResultStore
from ..exceptions import NotRegistered, PayloadTooLarge
from ..fixups import discovered_packages, install_fixups
from ..keys import TASK_META_PREFIX
from .duplicates import KEPT_FIRST, REPLACED, warn_duplicate
from .publish import Publishing
from .pydantic import PYDANTIC_OPTIONS, wrap_task_function
from .redis_options import backend_options, broker_options, durable_enqueue, queue_shards
from .requests import refuse_custom_request
from .task import Task

log = logging.getLogger("celery_docket.app")

RESULT_PREFIX = TASK_META_PREFIX

SUPPORTED_SETTINGS = frozenset(
    {
        "broker_url",
        "result_backend",
        "task_serializer",
        "result_serializer",
        "accept_content",
        "result_accept_content",
        "timezone",
        "enable_utc",
        "task_always_eager",
        "task_eager_propagates",
        "task_ignore_result",
        "task_track_started",
        "task_acks_late",
        "task_time_limit",
        "task_default_rate_limit",
        "task_soft_time_limit",
        "task_default_queue",
        "task_routes",
        "task_compression",
        "result_expires",
        "result_extended",
        "worker_concurrency",
        "worker_prefetch_multiplier",
        "worker_max_tasks_per_child",
        "worker_hijack_root_logger",
        "worker_pool",
        "imports",
        "include",
        "beat_schedule",
        "broker_transport_options",
        "redis_max_connections",
        "broker_pool_acquire_timeout",
        "task_create_missing_queues",
        "task_default_exchange",
        "task_default_routing_key",
        "broker_connection_retry_on_startup",
        "broker_connection_retry",
        "result_persistent",
        "worker_send_task_events",
        "task_send_sent_event",
        "beat_max_loop_interval",
        "beat_scheduler",
        "beat_schedule_filename",
        "worker_redirect_stdouts",
        "worker_redirect_stdouts_level",
        "worker_log_format",
        "worker_task_log_format",
        "task_store_eager_result",
        "broker_pool_limit",
        "result_backend_transport_options",
        "broker_heartbeat",
        "worker_disable_rate_limits",
        "worker_lost_wait",
        "task_queues",
        "worker_log_color",
        "broker_use_ssl",
        "redis_backend_use_ssl",
    }
)
"""Settings celery_docket honours (or that need nothing from it); others warn once if set."""


class TaskRegistry(dict[str, Task]):
    """Tasks by name; a missing name raises Celery's ``NotRegistered``."""

    def __missing__(self, key: str) -> Task:
        raise NotRegistered(key)

    def register(self, task: Task) -> None:
        self[task.name] = task

    def unregister(self, name: str) -> None:
        self.pop(name, None)


def gen_task_name(app: Celery, name: str, module: str) -> str:
    """Celery's naming: ``module.function``; ``__main__`` becomes the app's main name."""
    if module == "__main__" and app.main:
        module = app.main
    return f"{module}.{name}"


class _ByKind(dict):  # type: ignore[type-arg]
    """A dict making its values on first use from their key (``steps["consumer"]``)."""

    def __init__(self, make: Any) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: str) -> Any:
        value = self[key] = self._make(key)
        return value


class _AppTaskBase:
    """``app.Task``: the base of the app's tasks, ``task_cls`` unless assigned.

    A non-data descriptor, so ``app.Task = ContextTask`` after construction (Flask's older
    pattern) lands in the instance and is used for every task made after it, as in Celery;
    ``Celery.Task`` on the class is the plain Task.
    """

    def __get__(self, app: Any, owner: type | None = None) -> type[Task]:
        return Task if app is None else app.task_cls


class Celery(Publishing):
    """A Celery application whose broker is the celery_docket engine."""

    Task: Any = _AppTaskBase()

    def __init__(
        self,
        main: str | None = None,
        loader: Any = None,
        backend: str | None = None,
        amqp: Any = None,
        events: Any = None,
        log: Any = None,
        control: Any = None,
        set_as_current: bool = True,
        tasks: Any = None,
        broker: str | None = None,
        include: list[str] | tuple[str, ...] | None = None,
        changes: dict[str, Any] | None = None,
        config_source: Any = None,
        fixups: Any = None,
        task_cls: type[Task] | str | None = None,
        autofinalize: bool = True,
        namespace: str | None = None,
        strict_typing: bool = True,
        **kwargs: Any,
    ) -> None:
        self.main = main
        self.conf = Settings(namespace=namespace)
        if changes:
            self.conf.update(changes)
        if broker:
            self.conf["broker_url"] = broker
        if backend:
            self.conf["result_backend"] = backend
        if include:
            self.conf["include"] = tuple(include)
        for key, value in kwargs.items():
            self.conf[key] = value
        if config_source is not None:
            self.config_from_object(config_source)
        if isinstance(task_cls, str):
            module, _, attr = task_cls.replace(":", ".").rpartition(".")
            task_cls = getattr(importlib.import_module(module), attr)
        self.task_cls: type[Task] = task_cls or Task  # type: ignore[assignment]
        self._tasks = TaskRegistry()
        self._pending: list[tuple[Callable[..., Any], dict[str, Any]]] = []
        self.finalized = False
        self.autofinalize = autofinalize
        self.strict_typing = strict_typing
        self._lock = threading.RLock()
        self._docket: Docket | None = None
        self._results: Any = None  # a ResultStore, or django-db's store that wraps one
        self._backend: Any = None
        self._amqp: Any = None
        self._loader: Any = None
        self._autodiscover: list[tuple[Any, str, bool]] = []
        self._periodic: list[tuple[Any, Any, dict[str, Any]]] = []
        from ..signals import Signal as CelerySignal

        self.on_configure = CelerySignal(name="app.on_configure")
        self.on_after_configure = CelerySignal(name="app.on_after_configure")
        self.on_after_finalize = CelerySignal(name="app.on_after_finalize")
        self.on_after_fork = CelerySignal(name="app.on_after_fork")
        self._configured = False
        self._modules_signalled = False
        _state.register_app(self)
        if set_as_current:
            _state.set_default_app(self)
            _state._set_current_app(self)
        self._fixups = install_fixups(self, fixups)  # Django's, with DJANGO_SETTINGS_MODULE

    def __repr__(self) -> str:
        return f"<Celery {self.main or '__main__'} at {id(self):#x}>"

    @property
    def steps(self) -> dict[str, Any]:
        """``app.steps["worker"]``: readable; adding a bootstep raises (none are run)."""
        steps = self.__dict__.get("_steps")
        if steps is None:
            from ..bootsteps import RefusedSteps

            steps = self.__dict__["_steps"] = _ByKind(RefusedSteps)
        return steps

    @property
    def user_options(self) -> dict[str, Any]:
        """``app.user_options["worker"]``: readable; adding a CLI option raises."""
        options = self.__dict__.get("_user_options")
        if options is None:
            from ..bootsteps import RefusedOptions

            options = self.__dict__["_user_options"] = _ByKind(RefusedOptions)
        return options

    def __reduce__(self) -> Any:
        raise TypeError("Celery apps are not sent between processes by celery_docket")

    # -- configuration ----------------------------------------------------------------------

    def config_from_object(
        self, obj: Any, silent: bool = False, force: bool = False, namespace: str | None = None
    ) -> None:
        self.conf.config_from_object(obj, silent=silent, force=force, namespace=namespace)
        self._reset_connections()

    def config_from_envvar(
        self, variable_name: str, silent: bool = False, force: bool = False
    ) -> None:
        self.conf.config_from_envvar(variable_name, silent=silent, force=force)
        self._reset_connections()

    def config_from_cmdline(self, argv: list[str], namespace: str = "celery") -> None:
        for item in argv:
            key, _, value = item.partition("=")
            self.conf[key] = value

    def _reset_connections(self) -> None:
        self._docket = None
        self._results = None
        self._amqp = None

    def _ensure_configured(self) -> None:
        if not self._configured:
            self._configured = True
            self.on_configure.send(sender=self)
            self.on_after_configure.send(sender=self, source=self.conf)

    def set_current(self) -> None:
        _state._set_current_app(self)

    def set_default(self) -> None:
        _state.set_default_app(self)

    # -- tasks ------------------------------------------------------------------------------

    @property
    def tasks(self) -> TaskRegistry:
        self.finalize(auto=True)
        return self._tasks

    def finalize(self, auto: bool = False) -> None:
        with self._lock:
            if self.finalized:
                return
            if auto and not self.autofinalize:
                raise RuntimeError("Contract breach: app not finalized")
            self.finalized = True
            for callback in _state.app_finalizers():
                callback(self)
            pending, self._pending = self._pending, []
            for fun, opts in pending:
                self._task_from_fun(fun, **opts)
            self._ensure_configured()
            self.on_after_finalize.send(sender=self)

    def task(self, *args: Any, **opts: Any) -> Any:
        """``@app.task``, ``@app.task()`` and ``@app.task(name=..., bind=True, ...)``."""
        if opts.get("shared", True) is False:
            opts.pop("shared")

        def decorate(fun: Callable[..., Any]) -> Any:
            opts.pop("shared", None)
            if self.finalized or opts.get("_force_evaluate"):
                return self._task_from_fun(fun, **opts)
            with self._lock:
                task = self._task_from_fun(fun, **opts)
            return task

        if len(args) == 1 and callable(args[0]) and not opts:
            return decorate(args[0])
        if args:
            raise TypeError("app.task() takes keyword options only")
        return decorate

    def _task_from_fun(
        self,
        fun: Callable[..., Any],
        name: str | None = None,
        base: Any = None,
        bind: bool = False,
        **options: Any,
    ) -> Task:
        name = name or gen_task_name(self, fun.__name__, fun.__module__)
        base = base or self.Task
        if name in self._tasks:
            existing = self._tasks[name]
            # read off the class: through the instance a plain function comes back bound
            if vars(type(existing)).get("__wrapped__") is not fun:
                warn_duplicate(self, name, existing, fun, KEPT_FIRST)
            return existing
        options.pop("_force_evaluate", None)
        options.pop("lazy", None)
        if options.get("pydantic"):
            fun = wrap_task_function(self, fun, name, bind, options)
        else:
            for key in PYDANTIC_OPTIONS:
                options.pop(key, None)
        namespace = {
            "app": self,
            "name": name,
            "run": fun if bind else staticmethod(fun),
            "_decorated": True,
            "__doc__": fun.__doc__,
            "__module__": fun.__module__,
            "__qualname__": getattr(fun, "__qualname__", fun.__name__),
            "__wrapped__": fun,
            "__header__": None,
            "_bound": bind,
            **options,
        }
        task_type = type(fun.__name__, (base,), namespace)
        refuse_custom_request(task_type)
        task: Task = task_type()
        self._tasks[name] = task
        if not getattr(base, "typing", True) or not self.strict_typing:
            task.typing = False
        return task

    def register_task(self, task: Any, **options: Any) -> Task:
        refuse_custom_request(task if isinstance(task, type) else type(task))
        if isinstance(task, type):
            task = task()
        if task.name is None:
            task.name = gen_task_name(self, type(task).__name__, type(task).__module__)
        task.app = self
        existing = self._tasks.get(task.name)
        if existing is not None and existing is not task:
            warn_duplicate(self, task.name, existing, task, REPLACED)
        self._tasks[task.name] = task
        return task

    # -- discovery --------------------------------------------------------------------------

    def loader_import_modules(self) -> None:
        """Import ``imports`` and ``include`` (the worker does this at start)."""
        self.signal_import_modules()
        for module in list(self.conf.get("imports") or ()) + list(self.conf.get("include") or ()):
            importlib.import_module(module)
        self.run_autodiscovery()

    def signal_import_modules(self) -> None:
        """``import_modules``, once and before any task module is imported, as in Celery.
        Fix-ups run first and outside the signal, so that what they refuse stops the start
        (the Django fix-up runs ``django.setup()`` there)."""
        if not self._modules_signalled:
            self._modules_signalled = True
            for fixup in self._fixups:
                fixup.on_import_modules()
            signals.import_modules.send(sender=self)

    def autodiscover_tasks(
        self, packages: Any = None, related_name: str = "tasks", force: bool = False
    ) -> None:
        self._autodiscover.append((packages, related_name, force))
        if force:
            self.run_autodiscovery()

    def run_autodiscovery(self) -> None:
        pending, self._autodiscover = self._autodiscover, []
        for packages, related_name, _force in pending:
            if packages is None:
                packages = discovered_packages(self._fixups)  # Django's installed apps
            elif callable(packages):
                packages = packages()
            for package in packages or ():
                try:
                    importlib.import_module(f"{package}.{related_name}")
                except ModuleNotFoundError as exc:
                    if exc.name not in (f"{package}.{related_name}", package):
                        raise

    # -- engine ---------------------------------------------------------------------------

    @property
    def broker_url(self) -> str:
        url = self.conf.broker_url or "memory://"
        return str(url)

    @property
    def docket(self) -> Docket:
        """The engine client for the broker (created on first use)."""
        if self._docket is None:
            with self._lock:
                if self._docket is None:
                    url = self.broker_url
                    if url.startswith(("amqp", "pyamqp", "sqs", "librabbitmq")):
                        raise ValueError(
                            f"celery_docket runs on Redis or memory://, not {url.split(':')[0]}://"
                        )
                    from ..config import warn_unsupported

                    warn_unsupported(self.conf, set(SUPPORTED_SETTINGS))
                    max_connections = int(self.conf.get("redis_max_connections") or 32)
                    # Celery's None waits for ever; nothing of ours waits for ever
                    pool_timeout = float(self.conf.get("broker_pool_acquire_timeout") or 30.0)
                    backend = None
                    if not url.startswith("memory"):
                        backend = connect(
                            url,
                            max_connections=max_connections,
                            pool_timeout=pool_timeout,
                            **broker_options(self.conf),
                        )
                    docket = Docket(
                        url,
                        backend=backend,
                        prefix=self.conf.get("docket_key_prefix") or "cd",
                        result_prefix=RESULT_PREFIX,
                        max_payload_bytes=int(self.conf.get("docket_max_payload_bytes")),
                        max_connections=max_connections,
                        pool_timeout=pool_timeout,
                        shards=queue_shards(self.conf),
                    )
                    docket.wait_replicas, docket.wait_timeout_ms = durable_enqueue(self.conf)
                    self._docket = docket
        return self._docket

    @property
    def results(self) -> ResultStore:
        """Celery's Redis result layout, on the result backend (default: the broker)."""
        if self._results is None:
            backend = self.conf.result_backend
            in_process = str(backend).startswith(("memory", "cache+memory", "rpc"))
            if (
                not backend
                or str(backend) == self.broker_url
                or (in_process and self.broker_url.startswith("memory"))
            ):
                self._results = self.docket.results
            elif str(backend).startswith(("redis", "rediss", "unix", "sentinel")):
                store = connect(str(backend), **backend_options(self.conf))
                self._results = ResultStore(store, RESULT_PREFIX)
            elif str(backend).startswith("django-"):  # django-celery-results' rows
                from ..contrib.django.results import DjangoResultStore, check_backend

                check_backend(self)
                self._results = DjangoResultStore(self, self.docket.results)
            else:
                warnings.warn(
                    f"result_backend {backend!r} is not supported; results go to the broker",
                    UserWarning,
                    stacklevel=2,
                )
                self._results = self.docket.results
        return self._results

    @property
    def backend(self) -> Any:
        """The result backend (one per app, so code may keep state on it as on Celery's)."""
        if self._backend is None:
            from ..backends.store import Backend

            self._backend = Backend(self)
        return self._backend

    @property
    def amqp(self) -> Any:
        """The queues this app declares (Celery's ``app.amqp``)."""
        if self._amqp is None:
            from .amqp import AMQP

            self._amqp = AMQP(self)
        return self._amqp

    @property
    def loader(self) -> Any:
        if self._loader is None:
            from .loader import Loader

            self._loader = Loader(self)
        return self._loader

    def connection(self, url: str | None = None, **kwargs: Any) -> Any:
        """A handle on the broker for ``with app.connection() as conn:`` code."""
        from .connection import BrokerConnection

        return BrokerConnection(self, url)

    connection_for_read = connection_for_write = broker_connection = connection

    def result_ttl_ms(self) -> int:
        expires = self.conf.get("result_expires")
        if expires is None:
            return 0
        if isinstance(expires, timedelta):
            return int(expires.total_seconds() * 1000)
        return int(float(expires) * 1000)

    def hostname_for_eager(self) -> str:
        return f"gen@{socket.gethostname()}"

    # -- beat ------------------------------------------------------------------------------

    def add_periodic_task(
        self,
        schedule: Any,
        sig: Any,
        args: Any = (),
        kwargs: Any = (),
        name: str | None = None,
        **opts: Any,
    ) -> str:
        """Add a beat entry (keyed by ``name`` or the signature's repr, as in Celery)."""
        from ..canvas import Signature

        if isinstance(sig, Signature):
            sig = sig.clone(args or None, dict(kwargs) if kwargs else None)
        else:
            sig = self.signature(getattr(sig, "name", sig), tuple(args or ()), dict(kwargs or {}))
        key = name or repr(sig)
        entry = {
            "schedule": schedule,
            "task": sig.name,
            "args": sig.args,
            "kwargs": sig.kwargs,
            "options": dict(sig.options, **opts),
        }
        self.conf.beat_schedule = {**(self.conf.get("beat_schedule") or {}), key: entry}
        return key

    # -- control ---------------------------------------------------------------------------

    @property
    def events(self) -> Any:
        """``app.events``: event Dispatcher, Receiver and State, as in Celery."""
        from ..events import Events

        return Events(self)

    @property
    def control(self) -> Any:
        from ..control import Control

        return Control(self)

    def close(self) -> None:
        if self._docket is not None:
            self._docket.close()
        self._reset_connections()

    def __enter__(self) -> Celery:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Celery", "PayloadTooLarge", "TaskRegistry", "gen_task_name"]
