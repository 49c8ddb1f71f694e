"""The app's settings object: Celery 5.x setting names, defaults and loading rules.

``app.conf`` is a :class:`Settings`. It answers Celery's lowercase names, Celery's old
UPPERCASE names (``CELERY_ALWAYS_EAGER``, ``BROKER_URL``...) and, when a namespace is set,
prefixed names (``CELERY_BROKER_URL``). Values come from three layers, first match wins:

1. changes made on the object itself (``conf.x = ...``, ``conf.update(...)``, app kwargs);
2. the configuration source given to :meth:`Settings.config_from_object`, read *live*
   (so Django's ``override_settings`` is seen, as with Celery) and imported lazily, on the
   first read of any setting;
3. the defaults (``defaults.py``: every Celery setting with its old name, and ours).

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
``docket_queue_shards`` (default ``{}``)
    Sharded queues: ``{"celery": 3}`` spreads ``celery`` over three streams with their own
    hash tags (three masters on a Redis Cluster); inspection, purge and dead letters show it
    as one queue. See docs/scaling.md.
``docket_envelope_version`` (default 2)
    The task message envelope that publishers and retries write. Version 2 leaves Celery's
    defaults out (about a quarter of the bytes in Redis); set 1 while workers older than
    version 2 still consume the queues. Every worker reads both.

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
from typing import Any

from .defaults import DEFAULTS, DOCKET_DEFAULTS, NEW_TO_OLD, OLD_TO_NEW
from .exceptions import ImproperlyConfigured

__all__ = (
    "DEFAULTS",
    "DOCKET_DEFAULTS",
    "NEW_TO_OLD",
    "OLD_TO_NEW",
    "ImproperlyConfigured",
    "Settings",
    "warn_unsupported",
)

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
    except Exception:  # noqa: BLE001 - odd objects with broken __eq__: treat as changed
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
