"""The app's settings object: Celery 5.x setting names, defaults and loading rules.

``app.conf`` is a :class:`Settings`. It answers Celery's lowercase names, Celery's old
UPPERCASE names (``CELERY_ALWAYS_EAGER``, ``BROKER_URL``...) and, when a namespace is set,
prefixed names (``CELERY_BROKER_URL``). Values come from three layers, first match wins:

1. changes made on the object itself (``conf.x = ...``, ``conf.update(...)``, app kwargs);
2. the configuration source given to :meth:`Settings.config_from_object`, read *live*
   (so Django's ``override_settings`` is seen, as with Celery) and imported lazily, on the
   first read of any setting;
3. the defaults below.

Settings of our own (namespace ``docket_``), all optional:

``docket_max_payload_bytes`` (default 10 MiB)
    A task message larger than this is refused at publish with ``PayloadTooLarge``.
``docket_lease_seconds`` (default 30)
    How long a delivered task is held before another worker may reclaim it. When unset,
    ``broker_transport_options['visibility_timeout']`` is used if given.
``docket_max_deliveries`` (default 5)
    Deliveries of one message before it is moved to the dead-letter stream.
``docket_key_prefix`` (default ``"cd"``)
    Prefix of every Redis key the engine writes.
``docket_celery_intake`` (default False)
    Workers also move messages from Celery's kombu lists for their queues into ours
    (``worker --celery-intake``; see ``celery_docket/cutover``).
``docket_celery_unacked_age`` (default: Celery's ``visibility_timeout``, else 3600)
    Seconds after which a message a Celery worker reserved counts as orphaned and is taken.
``docket_enqueue_wait_replicas`` (default 0), ``docket_enqueue_wait_timeout`` (default 1 s)
    Durable enqueue: each publish waits (Redis ``WAIT``) until this many replicas have it,
    and raises if they do not confirm in time. See docs/scaling.md.

``task_default_retry_delay`` (default 180) is also accepted as an app-wide default for
``Task.default_retry_delay``; Celery itself only has the task attribute.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from datetime import timedelta
from typing import Any

try:
    from celery_docket.exceptions import ImproperlyConfigured
except ImportError:  # pragma: no cover - exceptions.py is written in parallel

    class ImproperlyConfigured(Exception):  # type: ignore[no-redef]
        """Configuration is invalid or inconsistent."""


__all__ = (
    "DEFAULTS",
    "DOCKET_DEFAULTS",
    "NEW_TO_OLD",
    "OLD_TO_NEW",
    "ImproperlyConfigured",
    "Settings",
    "warn_unsupported",
)

_LOG_FMT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
_TASK_LOG_FMT = (
    "[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s"
)
_C, _CD, _CB = "CELERY_", "CELERYD_", "CELERYBEAT_"

# name -> (Celery's default, the old name Celery 5 still reads for it).
_CELERY_SETTINGS: dict[str, tuple[Any, str]] = {
    # top level
    "accept_content": (("json",), _C + "ACCEPT_CONTENT"),
    "result_accept_content": (None, "RESULT_ACCEPT_CONTENT"),
    "enable_utc": (True, "ENABLE_UTC"),
    "imports": ((), _C + "IMPORTS"),
    "include": ((), _C + "INCLUDE"),
    "timezone": (None, _C + "TIMEZONE"),
    # beat
    "beat_max_loop_interval": (0, _CB + "MAX_LOOP_INTERVAL"),
    "beat_schedule": ({}, _CB + "SCHEDULE"),
    "beat_scheduler": ("celery.beat:PersistentScheduler", _CB + "SCHEDULER"),
    "beat_schedule_filename": ("celerybeat-schedule", _CB + "SCHEDULE_FILENAME"),
    "beat_sync_every": (0, _CB + "SYNC_EVERY"),
    "beat_cron_starting_deadline": (None, _CB + "CRON_STARTING_DEADLINE"),
    "beat_enable_remote_control": (False, _CB + "ENABLE_REMOTE_CONTROL"),
    "beat_remote_control_max_tick_age": (None, _CB + "REMOTE_CONTROL_MAX_TICK_AGE"),
    # broker
    "broker_url": (None, "BROKER_URL"),
    "broker_read_url": (None, "BROKER_READ_URL"),
    "broker_write_url": (None, "BROKER_WRITE_URL"),
    "broker_transport": (None, "BROKER_TRANSPORT"),
    "broker_transport_options": ({}, "BROKER_TRANSPORT_OPTIONS"),
    "broker_connection_timeout": (4, "BROKER_CONNECTION_TIMEOUT"),
    "broker_connection_retry": (True, "BROKER_CONNECTION_RETRY"),
    "broker_connection_retry_on_startup": (None, "BROKER_CONNECTION_RETRY_ON_STARTUP"),
    "broker_connection_max_retries": (100, "BROKER_CONNECTION_MAX_RETRIES"),
    "broker_channel_error_retry": (False, "BROKER_CHANNEL_ERROR_RETRY"),
    "broker_failover_strategy": (None, "BROKER_FAILOVER_STRATEGY"),
    "broker_heartbeat": (120, "BROKER_HEARTBEAT"),
    "broker_heartbeat_checkrate": (3.0, "BROKER_HEARTBEAT_CHECKRATE"),
    "broker_login_method": (None, "BROKER_LOGIN_METHOD"),
    "broker_native_delayed_delivery_queue_type": (
        "quorum",
        "BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE",
    ),
    "broker_pool_limit": (10, "BROKER_POOL_LIMIT"),
    "broker_pool_acquire_timeout": (None, "BROKER_POOL_ACQUIRE_TIMEOUT"),
    "broker_use_ssl": (False, "BROKER_USE_SSL"),
    "broker_host": (None, "BROKER_HOST"),
    "broker_port": (None, "BROKER_PORT"),
    "broker_user": (None, "BROKER_USER"),
    "broker_password": (None, "BROKER_PASSWORD"),
    "broker_vhost": (None, "BROKER_VHOST"),
    # remote control
    "control_queue_ttl": (300.0, "CONTROL_QUEUE_TTL"),
    "control_queue_expires": (10.0, "CONTROL_QUEUE_EXPIRES"),
    "control_exchange": ("celery", "CONTROL_EXCHANGE"),
    "control_queue_durable": (False, "CONTROL_QUEUE_DURABLE"),
    "control_queue_exclusive": (True, "CONTROL_QUEUE_EXCLUSIVE"),
    # events
    "event_exchange": ("celeryev", _C + "EVENT_EXCHANGE"),
    "event_queue_expires": (60.0, _C + "EVENT_QUEUE_EXPIRES"),
    "event_queue_ttl": (5.0, _C + "EVENT_QUEUE_TTL"),
    "event_queue_prefix": ("celeryev", _C + "EVENT_QUEUE_PREFIX"),
    "event_serializer": ("json", _C + "EVENT_SERIALIZER"),
    "event_queue_durable": (False, _C + "EVENT_QUEUE_DURABLE"),
    "event_queue_exclusive": (True, _C + "EVENT_QUEUE_EXCLUSIVE"),
    # redis result backend
    "redis_backend_use_ssl": (None, _C + "REDIS_BACKEND_USE_SSL"),
    "redis_db": (None, _C + "REDIS_DB"),
    "redis_host": (None, _C + "REDIS_HOST"),
    "redis_max_connections": (None, _C + "REDIS_MAX_CONNECTIONS"),
    "redis_username": (None, _C + "REDIS_USERNAME"),
    "redis_password": (None, _C + "REDIS_PASSWORD"),
    "redis_port": (None, _C + "REDIS_PORT"),
    "redis_retry_on_timeout": (False, _C + "REDIS_RETRY_ON_TIMEOUT"),
    "redis_socket_connect_timeout": (None, _C + "REDIS_SOCKET_CONNECT_TIMEOUT"),
    "redis_socket_keepalive": (False, _C + "REDIS_SOCKET_KEEPALIVE"),
    "redis_socket_timeout": (120.0, _C + "REDIS_SOCKET_TIMEOUT"),
    # results
    "result_backend": (None, _C + "RESULT_BACKEND"),
    "result_backend_always_retry": (False, _C + "RESULT_BACKEND_ALWAYS_RETRY"),
    "result_backend_max_retries": (float("inf"), _C + "RESULT_BACKEND_MAX_RETRIES"),
    "result_backend_base_sleep_between_retries_ms": (
        10,
        _C + "RESULT_BACKEND_BASE_SLEEP_BETWEEN_RETRIES_MS",
    ),
    "result_backend_max_sleep_between_retries_ms": (
        10000,
        _C + "RESULT_BACKEND_MAX_SLEEP_BETWEEN_RETRIES_MS",
    ),
    "result_backend_transport_options": ({}, _C + "RESULT_BACKEND_TRANSPORT_OPTIONS"),
    "result_cache_max": (-1, _C + "MAX_CACHED_RESULTS"),
    "result_chord_expires": (None, _C + "RESULT_CHORD_EXPIRES"),
    "result_chord_join_timeout": (3.0, _C + "RESULT_CHORD_JOIN_TIMEOUT"),
    "result_chord_retry_interval": (1.0, _C + "RESULT_CHORD_RETRY_INTERVAL"),
    "result_compression": (None, _C + "RESULT_COMPRESSION"),
    "result_exchange": ("celeryresults", _C + "RESULT_EXCHANGE"),
    "result_exchange_type": ("direct", _C + "RESULT_EXCHANGE_TYPE"),
    "result_expires": (timedelta(days=1), _C + "TASK_RESULT_EXPIRES"),
    "result_extended": (False, _C + "RESULT_EXTENDED"),
    "result_failure_expires": (None, _C + "RESULT_FAILURE_EXPIRES"),
    "result_persistent": (None, _C + "RESULT_PERSISTENT"),
    "result_serializer": ("json", _C + "RESULT_SERIALIZER"),
    # message signing
    "security_certificate": (None, _C + "SECURITY_CERTIFICATE"),
    "security_cert_store": (None, _C + "SECURITY_CERT_STORE"),
    "security_key": (None, _C + "SECURITY_KEY"),
    "security_key_password": (None, _C + "SECURITY_KEY_PASSWORD"),
    "security_digest": ("sha256", _C + "SECURITY_DIGEST"),
    # tasks
    "task_acks_late": (False, _C + "ACKS_LATE"),
    "task_acks_on_failure": (None, _C + "ACKS_ON_FAILURE"),
    "task_acks_on_timeout": (None, _C + "ACKS_ON_TIMEOUT"),
    "task_acks_on_failure_or_timeout": (True, _C + "ACKS_ON_FAILURE_OR_TIMEOUT"),
    "task_allow_error_cb_on_chord_header": (False, _C + "ALLOW_ERROR_CB_ON_CHORD_HEADER"),
    "task_always_eager": (False, _C + "ALWAYS_EAGER"),
    "task_annotations": (None, _C + "ANNOTATIONS"),
    "task_compression": (None, _C + "MESSAGE_COMPRESSION"),
    "task_create_missing_queues": (True, _C + "CREATE_MISSING_QUEUES"),
    "task_create_missing_queue_type": ("classic", _C + "CREATE_MISSING_QUEUE_TYPE"),
    "task_create_missing_queue_exchange_type": (
        None,
        _C + "CREATE_MISSING_QUEUE_EXCHANGE_TYPE",
    ),
    "task_default_delivery_mode": (2, _C + "DEFAULT_DELIVERY_MODE"),
    "task_default_exchange": (None, _C + "DEFAULT_EXCHANGE"),
    "task_default_exchange_type": ("direct", _C + "DEFAULT_EXCHANGE_TYPE"),
    "task_default_priority": (None, _C + "DEFAULT_PRIORITY"),
    "task_default_queue": ("celery", _C + "DEFAULT_QUEUE"),
    "task_default_queue_type": ("classic", _C + "DEFAULT_QUEUE_TYPE"),
    "task_default_rate_limit": (None, _C + "DEFAULT_RATE_LIMIT"),
    "task_default_routing_key": (None, _C + "DEFAULT_ROUTING_KEY"),
    "task_eager_propagates": (False, _C + "EAGER_PROPAGATES_EXCEPTIONS"),
    "task_ignore_result": (False, _C + "IGNORE_RESULT"),
    "task_inherit_parent_priority": (False, _C + "INHERIT_PARENT_PRIORITY"),
    "task_protocol": (2, _C + "TASK_PROTOCOL"),
    "task_publish_retry": (True, _C + "TASK_PUBLISH_RETRY"),
    "task_publish_retry_policy": (
        {"max_retries": 3, "interval_start": 0, "interval_max": 1, "interval_step": 0.2},
        _C + "TASK_PUBLISH_RETRY_POLICY",
    ),
    "task_queues": (None, _C + "QUEUES"),
    "task_queue_max_priority": (None, _C + "QUEUE_MAX_PRIORITY"),
    "task_reject_on_worker_lost": (None, _C + "REJECT_ON_WORKER_LOST"),
    "task_remote_tracebacks": (False, _C + "REMOTE_TRACEBACKS"),
    "task_repr_maxlevels": (3, _C + "REPR_MAXLEVELS"),
    "task_retry_on_worker_lost": (False, _C + "RETRY_ON_WORKER_LOST"),
    "task_routes": (None, _C + "ROUTES"),
    "task_send_sent_event": (False, _C + "SEND_TASK_SENT_EVENT"),
    "task_serializer": ("json", _C + "TASK_SERIALIZER"),
    "task_soft_time_limit": (None, _CD + "TASK_SOFT_TIME_LIMIT"),
    "task_store_eager_result": (False, _C + "STORE_EAGER_RESULT"),
    "task_store_errors_even_if_ignored": (False, _C + "STORE_ERRORS_EVEN_IF_IGNORED"),
    "task_time_limit": (None, _CD + "TASK_TIME_LIMIT"),
    "task_track_started": (False, _C + "TRACK_STARTED"),
    # workers
    "worker_agent": (None, _CD + "AGENT"),
    "worker_autoscaler": ("celery.worker.autoscale:Autoscaler", _CD + "AUTOSCALER"),
    "worker_cancel_long_running_tasks_on_connection_loss": (
        False,
        _CD + "CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS",
    ),
    "worker_concurrency": (None, _CD + "CONCURRENCY"),
    "worker_consumer": ("celery.worker.consumer:Consumer", _CD + "CONSUMER"),
    "worker_deduplicate_successful_tasks": (False, _CD + "DEDUPLICATE_SUCCESSFUL_TASKS"),
    "worker_detect_quorum_queues": (True, _CD + "DETECT_QUORUM_QUEUES"),
    "worker_direct": (False, _C + "WORKER_DIRECT"),
    "worker_disable_prefetch": (False, _CD + "DISABLE_PREFETCH"),
    "worker_disable_rate_limits": (False, _C + "DISABLE_RATE_LIMITS"),
    "worker_enable_prefetch_count_reduction": (True, _CD + "ENABLE_PREFETCH_COUNT_REDUCTION"),
    "worker_enable_remote_control": (True, _C + "ENABLE_REMOTE_CONTROL"),
    "worker_enable_soft_shutdown_on_idle": (False, _CD + "ENABLE_SOFT_SHUTDOWN_ON_IDLE"),
    "worker_eta_task_limit": (None, _CD + "ETA_TASK_LIMIT"),
    "worker_hijack_root_logger": (True, _CD + "HIJACK_ROOT_LOGGER"),
    "worker_log_color": (None, _CD + "LOG_COLOR"),
    "worker_log_datefmt": (None, _CD + "LOG_DATEFMT"),
    "worker_log_format": (_LOG_FMT, _CD + "LOG_FORMAT"),
    "worker_lost_wait": (10.0, _CD + "WORKER_LOST_WAIT"),
    "worker_max_memory_per_child": (None, _CD + "MAX_MEMORY_PER_CHILD"),
    "worker_max_tasks_per_child": (None, _CD + "MAX_TASKS_PER_CHILD"),
    "worker_pool": ("prefork", _CD + "POOL"),
    "worker_pool_putlocks": (True, _CD + "POOL_PUTLOCKS"),
    "worker_pool_restarts": (False, _CD + "POOL_RESTARTS"),
    "worker_pool_start_method": ("fork", _CD + "POOL_START_METHOD"),
    "worker_prefetch_multiplier": (4, _CD + "PREFETCH_MULTIPLIER"),
    "worker_proc_alive_timeout": (4.0, _CD + "PROC_ALIVE_TIMEOUT"),
    "worker_redirect_stdouts": (True, _C + "REDIRECT_STDOUTS"),
    "worker_redirect_stdouts_level": ("WARNING", _C + "REDIRECT_STDOUTS_LEVEL"),
    "worker_send_task_events": (False, _C + "SEND_EVENTS"),
    "worker_soft_shutdown_timeout": (0.0, _CD + "SOFT_SHUTDOWN_TIMEOUT"),
    "worker_state_db": (None, _CD + "STATE_DB"),
    "worker_task_log_datefmt": (None, _CD + "TASK_LOG_DATEFMT"),
    "worker_task_log_format": (_TASK_LOG_FMT, _CD + "TASK_LOG_FORMAT"),
    "worker_timer": (None, _CD + "TIMER"),
    "worker_timer_precision": (1.0, _CD + "TIMER_PRECISION"),
}

#: Settings that exist only here (no old names).
DOCKET_DEFAULTS: dict[str, Any] = {
    "docket_max_payload_bytes": 10 * 1024 * 1024,
    "docket_lease_seconds": 30,
    "docket_max_deliveries": 5,
    "docket_key_prefix": "cd",
    "docket_celery_intake": False,
    "docket_celery_unacked_age": None,
    "docket_revoke_expires": 10800,
    "docket_revokes_max": 50_000,
    "docket_enqueue_wait_replicas": 0,
    "docket_enqueue_wait_timeout": 1.0,
    "task_default_retry_delay": 180,
}

DEFAULTS: dict[str, Any] = {name: d for name, (d, _) in _CELERY_SETTINGS.items()}
DEFAULTS.update(DOCKET_DEFAULTS)
NEW_TO_OLD: dict[str, str] = {name: old for name, (_, old) in _CELERY_SETTINGS.items()}
OLD_TO_NEW: dict[str, str] = {old: name for name, old in NEW_TO_OLD.items()}

_MISSING = object()
_WARNED: set[str] = set()


def _case_like(model: str, text: str) -> str:
    """Return ``text`` upper- or lower-cased like ``model`` (``CELERY_`` -> upper)."""
    return text.upper() if model.isupper() else text.lower()


def _probe(source: Any, key: str) -> Any:
    """Look ``key`` up in a mapping or as an attribute; ``_MISSING`` when absent."""
    if isinstance(source, Mapping):
        return source[key] if key in source else _MISSING
    if key.startswith("_"):
        return _MISSING
    try:
        return getattr(source, key)
    except AttributeError:
        return _MISSING


def _source_keys(source: Any) -> list[str]:
    if source is None:
        return []
    if isinstance(source, Mapping):
        return [k for k in source if isinstance(k, str)]
    return [k for k in dir(source) if not k.startswith("_")]


def _import_object(path: str) -> Any:
    """Import ``pkg.mod``, ``pkg.mod:attr`` or ``pkg.mod.attr``, trying the cwd too."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        if ":" in path:
            module_name, _, attr = path.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        try:
            return importlib.import_module(path)
        except ModuleNotFoundError as exc:
            module_name, _, attr = path.rpartition(".")
            if exc.name != path or not module_name:
                raise  # a real import error inside the config module: show it as is
            return getattr(importlib.import_module(module_name), attr)
    finally:
        if added:
            try:
                sys.path.remove(cwd)
            except ValueError:
                pass


def _check_mixing(keys: Iterable[str]) -> None:
    """Refuse configs mixing old and new names, as Celery does (majority style wins)."""
    have = set(keys)
    new = have & NEW_TO_OLD.keys()
    old = have & OLD_TO_NEW.keys()
    if not new or not old:
        return
    if len(old) > len(new):
        stray, rename, hint = new, NEW_TO_OLD, "the old UPPERCASE format"
    else:
        stray, rename, hint = old, OLD_TO_NEW, "the new lowercase format"
    # A setting given under both names is fine: the user said it twice.
    stray = {key for key in stray if rename[key] not in have}
    if stray:
        lines = "\n".join(f"  {key:<40} -> {rename[key]}" for key in sorted(stray))
        raise ImproperlyConfigured(
            f"Cannot mix old and new setting names; rename these to {hint}:\n{lines}"
        )


class Settings(MutableMapping[str, Any]):
    """Celery-compatible configuration: a mutable mapping with attribute access.

    Before the first read, ``in`` and :meth:`setdefault` look only at changes made on this
    object (so they never import the config source), exactly as Celery's pending config.
    """

    _defaults: dict[str, Any]
    _changes: dict[str, Any]
    _namespace: str | None
    _pending: tuple[Any, bool] | None
    _source: Any
    _finalized: bool

    def __init__(
        self,
        changes: Mapping[str, Any] | None = None,
        *,
        namespace: str | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_defaults", copy.deepcopy(dict(DEFAULTS if defaults is None else defaults)))
        set_(self, "_changes", {})
        set_(self, "_namespace", namespace)
        set_(self, "_pending", None)  # (obj, silent) still to be resolved
        set_(self, "_source", None)
        set_(self, "_finalized", False)
        if changes:
            self.update(changes)

    # -- attribute access ------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # internals and dunders are never settings
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        prop = getattr(type(self), name, None)
        if name.startswith("_") or (isinstance(prop, property) and prop.fset is not None):
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    # -- key handling ------------------------------------------------------------------------

    @property
    def namespace(self) -> str | None:
        return self._namespace

    @namespace.setter
    def namespace(self, value: str | None) -> None:
        object.__setattr__(self, "_namespace", value)

    @property
    def _prefix(self) -> str | None:
        ns = self._namespace
        return ns.rstrip("_") + "_" if ns else None

    def _canonical(self, key: str) -> str:
        """Map an old or namespaced name to the lowercase name; others stay as they are."""
        if key in self._defaults:
            return key
        prefix = self._prefix
        if prefix and key.startswith(prefix):
            bare = key[len(prefix) :].lower()
            if bare in self._defaults and _case_like(prefix, prefix + bare) == key:
                return bare
        return OLD_TO_NEW.get(key, key)

    def _candidates(self, name: str, key: str) -> list[str]:
        """Names to try in the source, best first: prefixed, plain, old, as asked."""
        out = []
        prefix = self._prefix
        if prefix:
            out.append(name if name.startswith(prefix) else _case_like(prefix, prefix + name))
        out.append(name)
        if name in NEW_TO_OLD:
            out.append(NEW_TO_OLD[name])
        out.append(key)
        return list(dict.fromkeys(out))

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> Any:
        """Resolve a pending config source (first read only) and return the source."""
        pending = self._pending
        if pending is not None or not self._finalized:
            if pending is not None:
                obj, silent = pending
                if isinstance(obj, str):
                    try:
                        obj = _import_object(obj)
                    except (ImportError, AttributeError) as exc:
                        if not silent:
                            # An AttributeError here would be swallowed by __getattr__.
                            raise ModuleNotFoundError(*exc.args) from exc
                        obj = None
                if obj is not None and not self._prefix:
                    _check_mixing(_source_keys(obj))
                object.__setattr__(self, "_source", obj)
                object.__setattr__(self, "_pending", None)
            object.__setattr__(self, "_finalized", True)
        return self._source

    def config_from_object(
        self,
        obj: Any,
        silent: bool = False,
        force: bool = False,
        namespace: str | None = None,
    ) -> Settings | None:
        """Use ``obj`` (module, object, mapping or import path) as the config source.

        Strings are imported on the first read of a setting, unless ``force`` is true or
        settings were already read; then now. Changes made on this object are kept.
        Returns ``self`` when loaded now, else ``None``.
        """
        if namespace:
            self.namespace = namespace
        object.__setattr__(self, "_pending", (obj, silent))
        object.__setattr__(self, "_source", None)
        if force or self._finalized:
            self._load()
            return self
        return None

    def config_from_envvar(
        self, variable_name: str, silent: bool = False, force: bool = False
    ) -> Settings | bool | None:
        """Load the module named by environment variable ``variable_name``."""
        module_name = os.environ.get(variable_name)
        if not module_name:
            if silent:
                return False
            raise ImproperlyConfigured(
                f"The environment variable {variable_name!r} is not set, so no configuration "
                f'could be loaded. Set it to a configuration module, e.g. {variable_name}="proj.celeryconfig".'
            )
        return self.config_from_object(module_name, silent=silent, force=force)

    # -- mapping protocol ------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        name = self._canonical(key)
        if name in self._changes:
            return self._changes[name]
        source = self._load()
        if source is not None:
            for candidate in self._candidates(name, key):
                value = _probe(source, candidate)
                if value is not _MISSING:
                    return value
        if name == "docket_lease_seconds":
            options = self.get("broker_transport_options") or {}
            if options.get("visibility_timeout") is not None:
                return options["visibility_timeout"]
        if name in self._defaults:
            return self._defaults[name]
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._changes[self._canonical(key)] = value

    def __delitem__(self, key: str) -> None:
        del self._changes[self._canonical(key)]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if not self._finalized:
            return self._canonical(key) in self._changes
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        keys = dict.fromkeys(self._defaults)
        keys.update(dict.fromkeys(self._canonical(k) for k in _source_keys(self._load())))
        keys.update(dict.fromkeys(self._changes))
        return iter(keys)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<Settings: {len(self._changes)} changes, source={self._source!r}>"

    def setdefault(self, key: str, default: Any = None) -> Any:
        if not self._finalized:  # stay lazy, like Celery's pending configuration
            return self._changes.setdefault(self._canonical(key), default)
        return super().setdefault(key, default)

    def copy(self) -> Settings:
        """Independent copy sharing the (read-only) source."""
        self._load()
        other = Settings(namespace=self._namespace, defaults=self._defaults)
        other._changes.update(self._changes)
        object.__setattr__(other, "_source", self._source)
        object.__setattr__(other, "_finalized", True)
        return other

    __copy__ = copy

    # -- helpers Celery code calls ---------------------------------------------------------

    @property
    def changes(self) -> dict[str, Any]:
        """Values set on this object (not from the source or defaults)."""
        return self._changes

    def first(self, *keys: str) -> Any:
        """Value of the first key that is set to something other than ``None``."""
        for key in keys:
            value = self.get(key)
            if value is not None:
                return value
        return None

    def add_defaults(self, defaults: Mapping[str, Any]) -> None:
        """Register extra default values (used by extensions)."""
        self._defaults.update(defaults)

    def value_set_for(self, key: str) -> bool:
        """True when ``key`` was given by the user (changes or source), not defaulted."""
        name = self._canonical(key)
        if name in self._changes:
            return True
        source = self._load()
        return source is not None and any(
            _probe(source, c) is not _MISSING for c in self._candidates(name, key)
        )

    def without_defaults(self) -> dict[str, Any]:
        """Settings the user gave, by lowercase name."""
        return {k: self[k] for k in self if self.value_set_for(k)}

    # Environment variables beat config for these, on attribute access only (as in Celery).

    @property
    def broker_url(self) -> Any:
        return os.environ.get("CELERY_BROKER_URL") or self.first("broker_url", "broker_host")

    @property
    def broker_read_url(self) -> Any:
        return (
            os.environ.get("CELERY_BROKER_READ_URL")
            or self.get("broker_read_url")
            or self.broker_url
        )

    @property
    def broker_write_url(self) -> Any:
        return (
            os.environ.get("CELERY_BROKER_WRITE_URL")
            or self.get("broker_write_url")
            or self.broker_url
        )

    @property
    def result_backend(self) -> Any:
        return os.environ.get("CELERY_RESULT_BACKEND") or self.get("result_backend")

    @property
    def timezone(self) -> Any:
        # Django's TIME_ZONE is used when no Celery timezone is set.
        return self.first("timezone", "TIME_ZONE")

    @property
    def task_default_exchange(self) -> Any:
        return self.first("task_default_exchange", "task_default_queue")

    @property
    def task_default_routing_key(self) -> Any:
        return self.first("task_default_routing_key", "task_default_queue")


def _same(a: Any, b: Any) -> bool:
    """Equality that treats lists and tuples alike (``['json'] == ('json',)``)."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # odd objects with broken __eq__: treat as changed
        return False


def warn_unsupported(settings: Settings, supported: set[str]) -> list[str]:
    """Warn (once per process per name) about non-default Celery settings we ignore.

    Returns the names warned about by this call.
    """
    warned = []
    for name, default in DEFAULTS.items():
        if name in supported or name in DOCKET_DEFAULTS or name in _WARNED:
            continue
        value = settings.get(name, default)
        if _same(value, default):
            continue
        _WARNED.add(name)
        warned.append(name)
        warnings.warn(
            f"celery_docket does not implement the {name!r} setting "
            f"(set to {value!r}); it is ignored.",
            category=UserWarning,
            stacklevel=2,
        )
    return warned
