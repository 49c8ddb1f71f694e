"""Finding the user's app the way ``celery -A`` does, and the context commands share.

``-A proj``, ``proj.celery``, ``proj:app``, an app factory's ``current_app`` proxy: each is
resolved in Celery's order, and every failure becomes one ``Error:`` line that says what was
not found or which line of the user's code raised. The app is loaded on first use only, so
``--help`` and bad flags work without importing it.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from types import ModuleType
from typing import Any

import click

__all__ = ("AppNotFound", "CLIContext", "find_app", "get_context", "load_app", "where")

_HERE = os.path.dirname(os.path.abspath(__file__))


class AppNotFound(click.ClickException):
    """The ``-A`` value could not be turned into an app; shown as one ``Error:`` line."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Unable to load celery application. {detail}")


def _celery_class() -> type:
    from celery_docket import Celery

    return Celery


def _import_symbol(spec: str) -> Any:
    """Resolve ``module``, ``module.attr`` or ``module:attr.path`` to an object.

    Without a colon the last dotted part is tried as an attribute of its parent module first
    and as a submodule second, which is the order Celery uses.
    """
    if ":" in spec:
        module_name, _, attr_path = spec.partition(":")
        obj: Any = import_module(module_name)
        for part in attr_path.split("."):
            if not part:
                continue
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise AttributeError(
                    f"module {module_name!r} has no attribute {attr_path!r}"
                ) from None
        return obj
    parent, _, attr = spec.rpartition(".")
    if parent:
        module = import_module(parent)
        try:
            return getattr(module, attr)
        except AttributeError:
            pass
    return import_module(spec)


def _app_in_module(module: ModuleType, spec: str) -> Any:
    """Celery's search of a module given without ``:attr``.

    ``app`` first, then ``celery`` (unless that name is the celery *module*), then for a
    package its ``celery`` submodule, then any attribute that is an app instance.
    """
    app_class = _celery_class()
    fallback: Any = None
    for name in ("app", "celery"):
        found = getattr(module, name, None)
        if found is None or isinstance(found, ModuleType):
            continue
        # a FastAPI/Flask ``app`` beside the Celery one is passed over, not an error
        if isinstance(_unwrap(found), app_class):
            return found
        fallback = found if fallback is None else fallback
    if getattr(module, "__path__", None):
        try:
            return find_app(f"{spec}.celery")
        except ModuleNotFoundError as exc:
            if exc.name != f"{spec}.celery":
                raise
    for value in list(vars(module).values()):
        if isinstance(_unwrap(value), app_class):
            return value
    if fallback is not None:
        return fallback  # load_app says what it is instead (a celery app, a web app)
    raise AttributeError(f"module {spec!r} has no attribute 'celery'")


def _unwrap(obj: Any) -> Any:
    """The object behind a proxy (``current_app``, werkzeug's LocalProxy): app factories
    expose ``celery = current_app``, and the worker needs the app itself."""
    for _ in range(10):
        getter = getattr(type(obj), "_get_current_object", None)
        if getter is None:
            return obj
        try:
            obj = getter(obj)
        except Exception:  # noqa: BLE001 - a getter that fails leaves the object as found
            return obj
    return obj


def find_app(spec: str) -> Any:
    """Return the object ``spec`` names, looked up the way ``celery -A`` does."""
    sym = _import_symbol(spec)
    if isinstance(sym, ModuleType) and ":" not in spec:
        return _app_in_module(sym, spec)
    return sym


def _ours(filename: str) -> bool:
    """A frame of the command line itself (any module of this package)."""
    return os.path.dirname(os.path.abspath(filename)) == _HERE


def where(exc: BaseException) -> str:
    """`` (file, line N)`` of the innermost frame in user code (not ours, not importlib)."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in f.filename
        and not f.filename.startswith("<frozen")
        and not _ours(f.filename)
    ]
    if not frames:
        return ""
    last = frames[-1]
    try:
        filename = os.path.relpath(last.filename)
    except ValueError:
        filename = last.filename
    return f" ({filename}, line {last.lineno})"


def _module_parts(spec: str) -> set[str]:
    """``a.b.c:x`` -> {'a', 'a.b', 'a.b.c'}: the modules whose absence means 'not found'."""
    dotted = spec.partition(":")[0]
    parts = dotted.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


def load_app(spec: str) -> Any:
    """:func:`find_app` with every failure turned into a one-line :class:`AppNotFound`."""
    try:
        app = find_app(spec)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name in _module_parts(spec) and not _raised_inside(exc, exc.name):
            raise AppNotFound(f"The module {exc.name} was not found.") from None
        raise AppNotFound(
            f"While trying to load the module {spec} the following error occurred: "
            f"{type(exc).__name__}: {exc}{where(exc)}"
        ) from None
    except AttributeError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        raise AppNotFound(message[:1].upper() + message[1:]) from None
    except Exception as exc:  # noqa: BLE001 - whatever the user's module raises is reported, as Celery does
        raise AppNotFound(
            f"While trying to load the module {spec} the following error occurred: "
            f"{type(exc).__name__}: {exc}{where(exc)}"
        ) from None
    app = _unwrap(app)
    app_class = _celery_class()
    if not isinstance(app, app_class):
        kind = f"{type(app).__module__}.{type(app).__qualname__}"
        if kind.split(".")[0] == "celery":
            raise AppNotFound(
                f"{spec} is an app of the celery package ({kind}), not of celery_docket: "
                "change 'from celery import Celery' to 'from celery_docket import Celery'."
            )
        raise AppNotFound(f"{spec} is not a Celery application (found {kind}).")
    return app


def _raised_inside(exc: ModuleNotFoundError, name: str) -> bool:
    """True when a module named in the app path exists but an import *inside* it failed.

    ``-A proj`` where ``proj/__init__.py`` does ``import proj.missing`` must not be reported
    as "proj was not found"; a frame of user code in the traceback tells the two apart.
    """
    for frame in traceback.extract_tb(exc.__traceback__):
        filename = frame.filename
        if filename.startswith("<frozen") or "importlib" in filename:
            continue
        if not _ours(filename):
            return True
    return False


@contextmanager
def _cwd_on_path() -> Iterator[None]:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    yield


class CLIContext:
    """What the group passes to its commands; loads the app on first use only.

    Loading lazily lets ``celery-docket worker --help`` and bad-flag errors work without
    importing the user's app.
    """

    def __init__(
        self,
        app: Any = None,
        *,
        config: str | None = None,
        no_color: bool = False,
        quiet: bool = False,
        workdir: str | None = None,
    ) -> None:
        self._app_spec = app
        self._app: Any = None if isinstance(app, str) or app is None else app
        self.config = config
        self.no_color = no_color
        self.quiet = quiet
        self.workdir = workdir

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = self._load()
        return self._app

    def _load(self) -> Any:
        with _cwd_on_path():
            if isinstance(self._app_spec, str) and self._app_spec:
                app = load_app(self._app_spec)
            else:
                from celery_docket import current_app

                getter = getattr(current_app, "_get_current_object", None)
                app = getter() if getter is not None else current_app
            if self.config:
                self._apply_config(app, self.config)
        return app

    @staticmethod
    def _apply_config(app: Any, config: str) -> None:
        """``--config``: the module is the app's configuration unless the app chose one."""
        conf = app.conf
        has_source = (
            getattr(conf, "_source", None) is not None
            or getattr(conf, "_pending", None) is not None
        )
        if has_source:
            return
        try:
            import_module(config)
        except Exception as exc:  # noqa: BLE001 - whatever the user's config module raises is reported
            raise click.ClickException(
                f"Unable to load the configuration module {config}: "
                f"{type(exc).__name__}: {exc}{where(exc)}"
            ) from None
        app.config_from_object(config)

    def echo(self, message: Any = None, **kwargs: Any) -> None:
        if self.no_color:
            kwargs["color"] = False
        click.echo(message, **kwargs)

    def error(self, message: Any = None, **kwargs: Any) -> None:
        self.echo(message, err=True, **kwargs)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.error(f"Warning: {message}")


def get_context(ctx: click.Context) -> CLIContext:
    obj = ctx.find_object(CLIContext)
    if obj is None:  # a subcommand invoked on its own, e.g. from a test
        obj = ctx.ensure_object(CLIContext)
    return obj
