"""The ``celery-docket`` command: Celery's command line for celery_docket apps.

Global options and the ``worker``, ``call``, ``result`` and ``beat`` commands take the same
flags as ``celery``. Flags that have no meaning on this engine are accepted (so existing
deployment scripts keep working) and either ignored or answered with a warning. Every
failure a user can cause (an app that will not import, a broker that refuses connections, a
pool we do not have) ends in a single ``Error: ...`` line and a non-zero exit status, never a
traceback.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import click

from ..utils.nodenames import default_nodename, host_format
from ..utils.urls import redact_url

__all__ = ("CLIContext", "celery", "find_app", "host_format", "load_app", "main")

EX_OK = 0
EX_FAILURE = 1

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL")
POOLS = ("prefork", "processes", "threads", "solo")
#: not listed in --help, but let through to the command, which refuses them with advice
UNSUPPORTED_POOLS = ("gevent", "eventlet", "custom")


class AppNotFound(click.ClickException):
    """The ``-A`` value could not be turned into an app; shown as one ``Error:`` line."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Unable to load celery application. {detail}")


# -- finding the app ------------------------------------------------------------------------


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
        except Exception:
            return obj
    return obj


def find_app(spec: str) -> Any:
    """Return the object ``spec`` names, looked up the way ``celery -A`` does."""
    sym = _import_symbol(spec)
    if isinstance(sym, ModuleType) and ":" not in spec:
        return _app_in_module(sym, spec)
    return sym


def _where(exc: BaseException) -> str:
    """`` (file, line N)`` of the innermost frame in user code (not ours, not importlib)."""
    here = os.path.abspath(__file__)
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in f.filename
        and not f.filename.startswith("<frozen")
        and os.path.abspath(f.filename) != here
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
            f"{type(exc).__name__}: {exc}{_where(exc)}"
        ) from None
    except AttributeError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        raise AppNotFound(message[:1].upper() + message[1:]) from None
    except Exception as exc:
        raise AppNotFound(
            f"While trying to load the module {spec} the following error occurred: "
            f"{type(exc).__name__}: {exc}{_where(exc)}"
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
    here = os.path.abspath(__file__)
    for frame in traceback.extract_tb(exc.__traceback__):
        filename = frame.filename
        if filename.startswith("<frozen") or "importlib" in filename:
            continue
        if os.path.abspath(filename) != here:
            return True
    return False


@contextmanager
def _cwd_on_path() -> Iterator[None]:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    yield


# -- small helpers ---------------------------------------------------------------------------


safe_url = redact_url


def _connection_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, ConnectionError]
    try:
        import redis

        errors += [redis.ConnectionError, redis.TimeoutError]
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    for module, name in (
        ("celery_docket.engine", "BrokerUnavailable"),
        ("celery_docket.exceptions", "BrokerUnavailable"),
    ):
        try:
            errors.append(getattr(import_module(module), name))
        except (ImportError, AttributeError):  # pragma: no cover - written in parallel
            pass
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class BrokerError(click.ClickException):
    """The broker could not be reached: one line, exit status 1."""

    def __init__(self, url: str | None, exc: BaseException) -> None:
        where = f" to {safe_url(url)}" if url else ""
        super().__init__(f"Cannot connect{where}: {_one_line(exc)}")


@contextmanager
def broker_errors(url: str | None) -> Iterator[None]:
    """Turn connection failures raised in the body into :class:`BrokerError`."""
    try:
        yield
    except click.ClickException:
        raise
    except _connection_errors() as exc:
        raise BrokerError(url, exc) from None


def check_broker(url: str | None, timeout: float = 5.0) -> None:
    """Fail fast (one line) when a Redis broker refuses connections.

    ``memory://`` needs no check. Anything else is pinged once with a short timeout.
    """
    if not url or urlsplit(str(url)).scheme in ("", "memory"):
        return
    with broker_errors(str(url)):
        try:
            from celery_docket.engine import connect
        except ImportError:  # pragma: no cover - the engine is part of the package
            return
        try:
            backend = connect(str(url), socket_timeout=timeout)
        except ValueError as exc:
            raise click.ClickException(f"Invalid broker URL {safe_url(str(url))}: {exc}") from None
        try:
            backend.client.ping()
        finally:
            try:
                backend.close()
            except Exception:  # pragma: no cover - closing a dead connection
                pass


def _broker_url(app: Any) -> str | None:
    """The URL the app will connect to (``app.broker_url`` applies the default)."""
    try:
        url = app.conf.broker_url or getattr(app, "broker_url", None)
    except Exception:  # a broken config source is reported where it is used
        return None
    return str(url) if url else None


# -- the command context ---------------------------------------------------------------------


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
                try:
                    from celery_docket import current_app
                except ImportError:
                    app = _celery_class()()
                else:
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
        except Exception as exc:
            raise click.ClickException(
                f"Unable to load the configuration module {config}: "
                f"{type(exc).__name__}: {exc}{_where(exc)}"
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


def _obj(ctx: click.Context) -> CLIContext:
    obj = ctx.find_object(CLIContext)
    if obj is None:  # a subcommand invoked on its own, e.g. from a test
        obj = ctx.ensure_object(CLIContext)
    return obj


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("celery-docket")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def _chdir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        try:
            os.chdir(value)
        except OSError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


class PoolChoice(click.Choice):  # type: ignore[type-arg]
    """The pools we run, for --help; gevent/eventlet/custom reach the command's advice."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.lower() in UNSUPPORTED_POOLS:
            return value.lower()
        return super().convert(value, param, ctx)


class CommaList(click.ParamType):  # type: ignore[type-arg]
    """``a,b , c`` -> ``['a', 'b', 'c']``."""

    name = "COMMA SEPARATED LIST"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list | tuple):
            return list(value)
        return [item.strip() for item in str(value).split(",") if item.strip()]


class Concurrency(click.ParamType):  # type: ignore[type-arg]
    """A positive integer, or ``auto`` for the default."""

    name = "concurrency"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int):
            return value
        if str(value).lower() == "auto":
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a number or 'auto'", param, ctx)
        if number < 1:
            self.fail("must be at least 1", param, ctx)
        return number


class Autoscale(click.ParamType):  # type: ignore[type-arg]
    """``MAX,MIN`` (or just ``MAX``)."""

    name = "<MAX WORKERS>,<MIN WORKERS>"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, tuple):
            return value
        try:
            numbers = [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            self.fail(f"{value!r} is not 'MAX,MIN'", param, ctx)
        if not 1 <= len(numbers) <= 2:
            self.fail(f"{value!r} is not 'MAX,MIN'", param, ctx)
        return tuple(numbers)


class JsonValue(click.ParamType):  # type: ignore[type-arg]
    """A JSON document of one expected type (list for ``--args``, dict for ``--kwargs``)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = "JSON_ARRAY" if kind is list else "JSON_OBJECT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.kind):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"{value!r} is not valid JSON: {exc}", param, ctx)
        if not isinstance(parsed, self.kind):
            self.fail(f"{value!r} is not a {self.name}", param, ctx)
        return parsed


class IsoDateTime(click.ParamType):  # type: ignore[type-arg]
    name = "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date and time", param, ctx)


class SecondsOrDateTime(click.ParamType):  # type: ignore[type-arg]
    name = "ISO-8601 / FLOAT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, float | int | datetime):
            return value
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither seconds nor an ISO 8601 date and time", param, ctx)


# -- the group -------------------------------------------------------------------------------


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-A", "--app", "app", envvar="CELERY_APP", type=click.UNPROCESSED, help="The app.")
@click.option("-b", "--broker", envvar="CELERY_BROKER_URL", help="Broker URL.")
@click.option("--result-backend", envvar="CELERY_RESULT_BACKEND", help="Result backend URL.")
@click.option("--loader", envvar="CELERY_LOADER", help="Accepted for compatibility.")
@click.option("--config", envvar="CELERY_CONFIG_MODULE", help="Configuration module.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    callback=_chdir,
    is_eager=True,
    help="Change to this directory first.",
)
@click.option("-C", "--no-color", is_flag=True, envvar="NO_COLOR", help="No colors.")
@click.option("-q", "--quiet", is_flag=True, help="Print less.")
@click.option("--version", is_flag=True, help="Print the version and exit.")
@click.option("--skip-checks", is_flag=True, envvar="SKIP_CHECKS", help="Accepted; no effect.")
@click.pass_context
def celery(
    ctx: click.Context,
    app: Any,
    broker: str | None,
    result_backend: str | None,
    loader: str | None,
    config: str | None,
    workdir: Path | None,
    no_color: bool,
    quiet: bool,
    version: bool,
    skip_checks: bool,
) -> None:
    """celery-docket: Celery's command line on a Redis-streams engine."""
    if version:
        click.echo(f"celery-docket {_version()}")
        ctx.exit()
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit()
    # Like Celery, the global options reach the app through the environment, so an app
    # module that reads them at import time sees them too.
    if loader:
        os.environ["CELERY_LOADER"] = loader
    if broker:
        os.environ["CELERY_BROKER_URL"] = broker
    if result_backend:
        os.environ["CELERY_RESULT_BACKEND"] = result_backend
    if config:
        os.environ["CELERY_CONFIG_MODULE"] = config
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    ctx.obj = CLIContext(
        app,
        config=config,
        no_color=no_color,
        quiet=quiet,
        workdir=str(workdir) if workdir else None,
    )


# -- worker ----------------------------------------------------------------------------------


@contextmanager
def _pidfile(path: str | None) -> Iterator[None]:
    """Write our pid to ``path`` for the run; refuse when a live process already holds it."""
    if not path:
        yield
        return
    try:
        with open(path) as fh:
            other = int(fh.read().strip() or 0)
    except (OSError, ValueError):
        other = 0
    if other and other != os.getpid():
        try:
            os.kill(other, 0)
        except ProcessLookupError:
            pass  # stale: its process is gone
        except PermissionError:
            raise click.ClickException(
                f"Pidfile ({path}) already exists. Seems we're already running? (pid: {other})"
            ) from None
        else:
            raise click.ClickException(
                f"Pidfile ({path}) already exists. Seems we're already running? (pid: {other})"
            )
    try:
        with open(path, "w") as fh:
            fh.write(f"{os.getpid()}\n")
    except OSError as exc:
        raise click.ClickException(f"Cannot write pidfile {path}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        try:
            with open(path) as fh:
                mine = fh.read().strip() == str(os.getpid())
            if mine:
                os.unlink(path)
        except OSError:
            pass


def _queue_names(
    app: Any, queues: Sequence[str] | None, exclude: Sequence[str]
) -> list[str] | None:
    """``-Q`` minus ``-X``; ``None`` (the worker's default) when neither is given."""
    if not exclude:
        return list(queues) if queues else None
    if queues:
        base = list(queues)
    else:
        configured = app.conf.get("task_queues") or ()
        names = [getattr(q, "name", q) for q in configured]
        base = [str(n) for n in names] or [str(app.conf.get("task_default_queue") or "celery")]
    return [q for q in base if q not in set(exclude)]


def _task_modules(app: Any, extra: Sequence[str]) -> list[str]:
    """``-I`` modules, then the app's ``imports`` and ``include`` settings."""
    modules = list(extra)
    for key in ("imports", "include"):
        try:
            value = app.conf.get(key) or ()
        except Exception:
            value = ()
        modules += [value] if isinstance(value, str) else list(value)
    return list(dict.fromkeys(modules))


def _make_worker(app: Any, **options: Any) -> Any:
    try:
        from celery_docket.worker import WorkController
    except ImportError as exc:
        raise click.ClickException(f"The worker is not available: {exc}") from None
    return WorkController(app, **options)


@celery.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--hostname", help="Node name, e.g. 'w1@%h'; expands %h, %n and %d.")
@click.option("-D", "--detach", is_flag=True, help="Not supported: use a process manager.")
@click.option("-S", "--statedb", help="Accepted: revokes are already persistent.")
@click.option(
    "-l",
    "--loglevel",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Logging level.",
)
@click.option(
    "-O",
    "--optimization",
    type=click.Choice(["default", "fair"], case_sensitive=False),
    help="Accepted; this engine always hands tasks to free processes.",
)
@click.option("--prefetch-multiplier", type=int, help="worker_prefetch_multiplier.")
@click.option("--disable-prefetch", is_flag=True, help="Accepted; no effect.")
@click.option("-c", "--concurrency", type=Concurrency(), help="Processes or threads.")
@click.option(
    "-P",
    "--pool",
    type=PoolChoice(POOLS, case_sensitive=False),
    default="prefork",
    show_default=True,
    help="Pool implementation (prefork, threads or solo).",
)
@click.option("-E", "--task-events", "--events", is_flag=True, help="worker_send_task_events.")
@click.option("--time-limit", type=float, help="Hard time limit for tasks, in seconds.")
@click.option("--soft-time-limit", type=float, help="Soft time limit for tasks, in seconds.")
@click.option("--max-tasks-per-child", type=int, help="Replace a child after this many tasks.")
@click.option("--max-memory-per-child", type=int, help="Accepted; not enforced (warns).")
@click.option("--pool-start-method", type=click.Choice(["fork", "spawn"]), help="Accepted.")
@click.option("--purge", "--discard", is_flag=True, help="Accepted; not supported (warns).")
@click.option("-Q", "--queues", type=CommaList(), help="Queues to consume, comma separated.")
@click.option("-X", "--exclude-queues", type=CommaList(), help="Queues not to consume.")
@click.option("-I", "--include", type=CommaList(), help="Extra modules to import.")
@click.option("--without-gossip", is_flag=True, help="Accepted; no gossip to turn off.")
@click.option("--without-mingle", is_flag=True, help="Accepted; no mingle to turn off.")
@click.option("--without-heartbeat", is_flag=True, help="Accepted.")
@click.option("--heartbeat-interval", type=int, help="Accepted.")
@click.option("--autoscale", type=Autoscale(), help="Accepted; not supported (warns).")
@click.option("-B", "--beat", is_flag=True, help="Also run beat entries (always safe here).")
@click.option("-s", "--schedule-filename", "--schedule", help="Accepted; no schedule file.")
@click.option("--scheduler", help="Only Celery's default; the engine schedules beat entries.")
@click.option("-f", "--logfile", help="Log destination; defaults to stderr.")
@click.option("--pidfile", help="PID file path.")
@click.option("--uid", help="Accepted; run the worker as the user you want.")
@click.option("--gid", help="Accepted; run the worker as the group you want.")
@click.option("--umask", help="Accepted.")
@click.option("--executable", help="Accepted.")
@click.option(
    "--metrics-port",
    type=int,
    envvar="CELERY_DOCKET_METRICS_PORT",
    help="Serve Prometheus metrics (celery-exporter's names) on this port.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    hostname: str | None,
    detach: bool,
    statedb: str | None,
    loglevel: str,
    optimization: str | None,
    prefetch_multiplier: int | None,
    disable_prefetch: bool,
    concurrency: int | None,
    pool: str,
    task_events: bool,
    time_limit: float | None,
    soft_time_limit: float | None,
    max_tasks_per_child: int | None,
    max_memory_per_child: int | None,
    pool_start_method: str | None,
    purge: bool,
    queues: list[str] | None,
    exclude_queues: list[str] | None,
    include: list[str] | None,
    without_gossip: bool,
    without_mingle: bool,
    without_heartbeat: bool,
    heartbeat_interval: int | None,
    autoscale: tuple[int, ...] | None,
    beat: bool,
    schedule_filename: str | None,
    scheduler: str | None,
    logfile: str | None,
    pidfile: str | None,
    uid: str | None,
    gid: str | None,
    umask: str | None,
    executable: str | None,
    metrics_port: int | None,
) -> None:
    """Start a worker.

    \b
    Examples
    --------
    $ celery-docket -A proj worker -l INFO
    $ celery-docket -A proj worker -l INFO -Q hipri,lopri -c 4
    $ celery-docket -A proj worker -P threads -c 50
    """
    from .beat import check_scheduler, use_scheduler

    obj = _obj(ctx)
    check_scheduler(scheduler)
    pool = pool.lower()
    if pool in UNSUPPORTED_POOLS:
        raise click.ClickException(
            f"The {pool} pool is not supported by celery-docket: use -P threads for I/O-bound "
            "tasks (-c sets how many threads, e.g. -c 50), or prefork, the default, for "
            "CPU-bound ones."
        )
    if pool == "processes":
        pool = "prefork"
    if detach:
        raise click.ClickException(
            "--detach is not supported: run the worker under a process manager "
            "(systemd, supervisord, a container runtime) instead."
        )
    if max_memory_per_child:
        obj.warn("--max-memory-per-child is not enforced by celery-docket; ignoring it.")
    if autoscale:
        obj.warn("--autoscale is not supported by celery-docket; use -c to size the pool.")
    if purge:
        obj.warn("--purge is not supported by celery-docket; nothing was discarded.")

    app = obj.app
    use_scheduler(app, scheduler)  # --scheduler: the default or django-celery-beat's
    # The worker imports these too; importing them first lists their tasks in the banner
    # and reports a broken task module on one line.
    app.signal_import_modules()  # Django's set-up comes before any task module
    for module in [*_task_modules(app, include or []), None]:
        try:
            import_module(module) if module else app.run_autodiscovery()
        except Exception as exc:
            raise click.ClickException(
                f"Cannot import the task module {module or 'found by autodiscover_tasks()'}: "
                f"{type(exc).__name__}: {_one_line(exc)}{_where(exc)}"
            ) from None
    if prefetch_multiplier is not None:
        app.conf.worker_prefetch_multiplier = prefetch_multiplier
    if task_events:
        app.conf.worker_send_task_events = True
    if obj.no_color:
        app.conf.worker_log_color = False

    nodename = host_format(default_nodename(hostname)) if hostname else None
    node_host = nodename.partition("@")[2] if nodename else None
    logfile = host_format(logfile, node_host) if logfile else None
    pidfile = host_format(pidfile, node_host) if pidfile else None
    url = _broker_url(app)

    check_broker(url)
    with _pidfile(pidfile), broker_errors(url):
        controller = _make_worker(
            app,
            pool=pool,
            concurrency=concurrency,
            queues=_queue_names(app, queues, exclude_queues or []),
            hostname=nodename,
            loglevel=loglevel.upper().replace("FATAL", "CRITICAL"),
            max_tasks_per_child=max_tasks_per_child,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            beat=beat,
            logfile=logfile,
        )
        if metrics_port is not None:
            from ..contrib.prometheus import serve

            serve(app, metrics_port, multiprocess=pool == "prefork")
        if not obj.quiet:
            banner = controller.banner()
            if banner:
                obj.echo(banner)
        code = controller.start()
    ctx.exit(int(code or 0))


def _warn_if_memory(obj: CLIContext, url: str | None) -> None:
    if url and urlsplit(url).scheme == "memory":
        obj.warn(
            f"the broker is {url}, which lives inside this one process: no worker can see "
            "it. Give a Redis URL with -b or CELERY_BROKER_URL."
        )


def _refuse_memory(url: str | None, command: str) -> None:
    """``call``/``result`` run in their own process: an in-process broker is unreachable."""
    if url and urlsplit(url).scheme == "memory":
        raise click.ClickException(
            f"the broker is {url}, which lives inside one process: `celery-docket {command}` "
            "runs in a separate process and cannot reach it (a task sent there would never "
            "run, a result never arrive). Give a Redis URL with -b or CELERY_BROKER_URL."
        )


# -- call ------------------------------------------------------------------------------------


@celery.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name")
@click.option("-a", "--args", "args", type=JsonValue(list), default="[]", help="Positional args.")
@click.option("-k", "--kwargs", "kwargs", type=JsonValue(dict), default="{}", help="Keyword args.")
@click.option("--eta", type=IsoDateTime(), help="When to run, ISO 8601.")
@click.option("--countdown", type=float, help="Seconds to wait before running.")
@click.option("--expires", type=SecondsOrDateTime(), help="Seconds or ISO 8601 date.")
@click.option("--serializer", default="json", show_default=True, help="Serializer.")
@click.option("--queue", help="Custom queue name.")
@click.option("--exchange", help="Custom exchange name (accepted).")
@click.option("--routing-key", help="Custom routing key (accepted).")
@click.pass_context
def call(
    ctx: click.Context,
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    eta: datetime | None,
    countdown: float | None,
    expires: float | datetime | None,
    serializer: str,
    queue: str | None,
    exchange: str | None,
    routing_key: str | None,
) -> None:
    """Call a task by name and print its id."""
    obj = _obj(ctx)
    app = obj.app
    options: dict[str, Any] = {
        "countdown": countdown,
        "eta": eta,
        "expires": expires,
        "queue": queue,
        "exchange": exchange,
        "routing_key": routing_key,
    }
    if serializer and serializer != "json":
        options["serializer"] = serializer
    options = {k: v for k, v in options.items() if v is not None}
    url = _broker_url(app)
    _refuse_memory(url, "call")
    with broker_errors(url):
        try:
            result = app.send_task(name, args=args, kwargs=kwargs, **options)
        except click.ClickException:
            raise
        except _connection_errors():
            raise
        except Exception as exc:
            raise click.ClickException(
                f"Cannot send {name}: {type(exc).__name__}: {_one_line(exc)}"
            ) from None
    obj.echo(result.id)


# -- result ----------------------------------------------------------------------------------


def _is_timeout(exc: BaseException) -> bool:
    return any(cls.__name__ in ("TimeoutError", "ResultTimeout") for cls in type(exc).__mro__)


@celery.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("task_id")
@click.option("-t", "--task", help="Name of the task (for its custom result class).")
@click.option("--traceback", is_flag=True, help="Print the traceback instead of the result.")
@click.option("--timeout", type=float, help="Seconds to wait; default: wait forever.")
@click.pass_context
def result(
    ctx: click.Context,
    task_id: str,
    task: str | None,
    traceback: bool,
    timeout: float | None,
) -> None:
    """Print the return value of the task with this id (waiting for it)."""
    obj = _obj(ctx)
    app = obj.app
    if task:
        if task not in app.tasks:
            raise click.ClickException(f"Unknown task {task!r}.")
        result_cls = app.tasks[task].AsyncResult
    else:
        result_cls = app.AsyncResult
    res = result_cls(task_id)
    url = _broker_url(app)
    _refuse_memory(str(app.conf.get("result_backend") or url or ""), "result")
    with broker_errors(url):
        if traceback:
            value = res.traceback
        else:
            try:
                value = res.get(timeout=timeout)
            except click.ClickException:
                raise
            except _connection_errors() as exc:
                if _is_timeout(exc):
                    raise click.ClickException(
                        f"No result for {task_id} within {timeout:g} seconds."
                    ) from None
                raise
            except Exception as exc:
                if _is_timeout(exc):
                    raise click.ClickException(
                        f"No result for {task_id} within {timeout:g} seconds."
                    ) from None
                raise click.ClickException(
                    f"Task {task_id} raised {type(exc).__name__}: {_one_line(exc)}"
                ) from None
    obj.echo(value)


# -- remote control: status, inspect, control, purge, report -------------------------------

EX_UNAVAILABLE = 69
"""Exit status when no worker is alive (the same number Celery uses)."""

REMOTE_OPTIONS = [
    click.option(
        "-t",
        "--timeout",
        type=float,
        default=1.0,
        help="Accepted; answers come from Redis at once.",
    ),
    click.option("-d", "--destination", type=CommaList(), help="Comma separated node names."),
    click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON."),
]


def _remote_options(fn: Any) -> Any:
    for option in reversed(REMOTE_OPTIONS):
        fn = option(fn)
    return fn


class NoNodes(click.ClickException):
    """No worker heartbeat in Redis: exit status 69, like ``celery status``."""

    exit_code = EX_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            "No nodes replied within time constraint (no live worker heartbeat in Redis)"
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _indent(text: str, by: int) -> str:
    pad = " " * by
    return "\n".join(pad + line for line in text.splitlines())


def _pretty(reply: Any) -> tuple[str, str]:
    """(OK|ERROR, body) of one node's reply, laid out as ``celery inspect`` shows it."""
    if isinstance(reply, list):
        return "OK", ("\n".join(f"* {item}" for item in reply) if reply else "- empty -")
    if isinstance(reply, dict):
        if "ok" in reply:
            return "OK", _indent(_pretty(reply["ok"])[1], 4)
        if "error" in reply:
            return "ERROR", _indent(_pretty(reply["error"])[1], 4)
        return "OK", json.dumps(reply, sort_keys=True, indent=4, default=str)
    if isinstance(reply, str):
        return "OK", reply
    from pprint import pformat

    return "OK", pformat(reply)


def _say(obj: CLIContext, node: str, reply: Any, show_body: bool) -> None:
    status, body = _pretty(reply)
    obj.echo(f"->  {node}: {status}")
    if show_body and body:
        obj.echo(_indent(body, 4))


def _sayer(obj: CLIContext, show_body: bool) -> Callable[[dict[str, Any]], None]:
    """A reply callback printing each ``{node: reply}`` as it comes."""

    def say(one: dict[str, Any]) -> None:
        for node, reply in one.items():
            _say(obj, node, reply, show_body)

    return say


# name -> (positional (name, type) pairs, variadic name or None)
_INSPECT_ARGS: dict[str, tuple[list[tuple[str, Any]], str | None]] = {
    "query_task": ([], "ids"),
    "registered": ([], "taskinfoitems"),
}
_CONTROL_ARGS: dict[str, tuple[list[tuple[str, Any]], str | None]] = {
    "revoke": ([], "task_id"),
    "terminate": ([("signal", str)], "task_id"),
    "time_limit": ([("task_name", str), ("soft", float), ("hard", float)], None),
    "rate_limit": ([("task_name", str), ("rate_limit", str)], None),
    "add_consumer": (
        [("queue", str), ("exchange", str), ("exchange_type", str), ("routing_key", str)],
        None,
    ),
    "cancel_consumer": ([("queue", str)], None),
    "pool_grow": ([("n", int)], None),
    "pool_shrink": ([("n", int)], None),
    "autoscale": ([("max", int), ("min", int)], None),
}
_HELP = {
    "active": "Tasks running now.",
    "active_queues": "Queues each worker consumes.",
    "ping": "Ping the workers.",
    "query_task": "Where tasks stand, by id: active, reserved or scheduled.",
    "registered": "Registered tasks (optionally with some attributes).",
    "report": "Versions and settings for bug reports.",
    "reserved": "Tasks delivered to a worker and not started yet.",
    "revoked": "Revoked task ids (kept in Redis).",
    "scheduled": "Tasks waiting for their ETA/countdown.",
    "stats": "Worker statistics.",
    "add_consumer": "Consume one more queue.",
    "cancel_consumer": "Stop consuming a queue.",
    "heartbeat": "Refresh the heartbeats now.",
    "pool_grow": "Start N more prefork processes.",
    "pool_shrink": "Stop N prefork processes after their task.",
    "revoke": "Revoke tasks by id.",
    "shutdown": "Stop the workers gracefully.",
    "terminate": "Revoke tasks by id and stop them where they run.",
    "time_limit": "Set a task's soft and hard time limits.",
}


_SIGNATURES = {
    "query_task": "ID [ID ...]",
    "registered": "[ATTR ...]",
    "revoke": "ID [ID ...]",
    "terminate": "SIGNAL ID [ID ...]",
    "time_limit": "TASK_NAME SOFT_SECS [HARD_SECS]",
    "add_consumer": "QUEUE",
    "cancel_consumer": "QUEUE",
    "pool_grow": "[N=1]",
    "pool_shrink": "[N=1]",
}


def _compile(command: str, args: list[str], table: dict[str, Any]) -> dict[str, Any]:
    positional, variadic = table.get(command, ([], None))
    values = list(args)
    out: dict[str, Any] = {}
    for name, kind in positional:
        if not values:
            break
        raw = values.pop(0)
        try:
            out[name] = kind(raw)
        except ValueError:
            raise click.UsageError(
                f"{command}: {name} must be a {kind.__name__}, not {raw!r}"
            ) from None
    if variadic:
        out[variadic] = values
    elif values:
        names = " ".join(f"<{n}>" for n, _ in positional) or "no arguments"
        raise click.UsageError(f"{command} takes {names}")
    return out


def _list_commands(kind: str) -> Callable[[Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if not value:
            return
        from celery_docket.control import (
            CONTROL_COMMANDS,
            INSPECT_COMMANDS,
            UNSUPPORTED_CONTROL,
            UNSUPPORTED_INSPECT,
        )

        names, missing = (
            (INSPECT_COMMANDS, UNSUPPORTED_INSPECT)
            if kind == "inspect"
            else (CONTROL_COMMANDS, UNSUPPORTED_CONTROL)
        )
        formatter = click.HelpFormatter()
        with formatter.section(f"{kind.capitalize()} commands"):
            formatter.write_dl(
                [(f"{n} {_SIGNATURES.get(n, '')}".strip(), _HELP.get(n, "")) for n in names]
            )
        with formatter.section("Not supported by celery-docket"):
            formatter.write_dl(sorted(missing.items()))
        click.echo(formatter.getvalue(), nl=False)
        ctx.exit()

    return click.option(
        "--list",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=callback,
        help=f"List the {kind} commands and exit.",
    )


def _remote_app(obj: CLIContext) -> Any:
    app = obj.app
    url = _broker_url(app)
    _warn_if_memory(obj, url)
    check_broker(url)
    return app


@celery.command(context_settings={"help_option_names": ["-h", "--help"]})
@_remote_options
@click.pass_context
def status(
    ctx: click.Context, timeout: float, destination: list[str] | None, as_json: bool
) -> None:
    """List the workers that are alive (exit status 69 when none is)."""
    obj = _obj(ctx)
    app = _remote_app(obj)
    with broker_errors(_broker_url(app)):
        callback = None if as_json else _sayer(obj, False)
        replies = app.control.inspect(destination=destination, callback=callback).ping()
    if not replies:
        raise NoNodes()
    if as_json:
        obj.echo(json.dumps(replies))
    if not obj.quiet:
        obj.echo(f"\n{_plural(len(replies), 'node')} online.")


@celery.command(context_settings={"help_option_names": ["-h", "--help"], "allow_extra_args": True})
@click.argument("command")
@_list_commands("inspect")
@_remote_options
@click.pass_context
def inspect(
    ctx: click.Context,
    command: str,
    timeout: float,
    destination: list[str] | None,
    as_json: bool,
) -> None:
    """Ask the workers: COMMAND is ping, active, reserved, scheduled, stats, registered,
    revoked, active_queues, query_task or report (answered from Redis at once)."""
    from celery_docket.control import INSPECT_COMMANDS, UNSUPPORTED_INSPECT

    if command not in INSPECT_COMMANDS and command not in UNSUPPORTED_INSPECT:
        raise click.UsageError(
            f"Unknown inspect command {command!r}. Known: {', '.join(INSPECT_COMMANDS)}"
        )
    obj = _obj(ctx)
    arguments = _compile(command, list(ctx.args), _INSPECT_ARGS)
    app = _remote_app(obj)
    with broker_errors(_broker_url(app)):
        callback = None if as_json else _sayer(obj, True)
        try:
            replies = app.control.inspect(destination=destination, callback=callback)._request(
                command, **arguments
            )
        except NotImplementedError as exc:
            raise click.ClickException(str(exc)) from None
    if not replies:
        raise NoNodes()
    if as_json:
        obj.echo(json.dumps(replies, default=str))
        return
    if not obj.quiet:
        obj.echo(f"\n{_plural(len(replies), 'node')} online.")


@celery.command(context_settings={"help_option_names": ["-h", "--help"], "allow_extra_args": True})
@click.argument("command")
@_list_commands("control")
@_remote_options
@click.pass_context
def control(
    ctx: click.Context,
    command: str,
    timeout: float,
    destination: list[str] | None,
    as_json: bool,
) -> None:
    """Tell the workers: COMMAND is revoke, terminate, time_limit, add_consumer,
    cancel_consumer, pool_grow, pool_shrink, heartbeat or shutdown."""
    from celery_docket.control import CONTROL_COMMANDS, UNSUPPORTED_CONTROL

    if command not in CONTROL_COMMANDS and command not in UNSUPPORTED_CONTROL:
        raise click.UsageError(
            f"Unknown control command {command!r}. Known: {', '.join(CONTROL_COMMANDS)}"
        )
    obj = _obj(ctx)
    arguments = _compile(command, list(ctx.args), _CONTROL_ARGS)
    if command in ("revoke", "terminate") and not arguments.get("task_id"):
        raise click.UsageError(f"{command} needs at least one task id")
    if command == "time_limit" and "task_name" not in arguments:
        raise click.UsageError("time_limit takes <task_name> <soft_secs> [hard_secs]")
    if command in ("add_consumer", "cancel_consumer") and "queue" not in arguments:
        raise click.UsageError(f"{command} takes <queue>")
    app = _remote_app(obj)
    with broker_errors(_broker_url(app)):
        callback = None if as_json else _sayer(obj, True)
        try:
            replies = app.control.broadcast(
                command,
                arguments=arguments,
                destination=destination,
                reply=True,
                timeout=timeout,
                callback=callback,
            )
        except NotImplementedError as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if not replies:
        raise NoNodes()
    if as_json:
        obj.echo(json.dumps(replies, default=str))


@celery.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("-Q", "--queues", type=CommaList(), help="Queues to purge (default: the app's).")
@click.option("-X", "--exclude-queues", type=CommaList(), help="Queues not to purge.")
@click.pass_context
def purge(
    ctx: click.Context,
    force: bool,
    queues: list[str] | None,
    exclude_queues: list[str] | None,
) -> None:
    """Delete every waiting task (ready or scheduled) of the app's queues.

    Tasks already handed to a worker and beat entries are kept. There is no undo.
    """
    from celery_docket.control import app_queues, purge_queues

    obj = _obj(ctx)
    app = _remote_app(obj)
    names = sorted(set(queues or app_queues(app)) - set(exclude_queues or ()))
    if not names:
        obj.echo("No queues to purge.")
        return
    if not force:
        click.confirm(
            f"About to delete every waiting task of {_plural(len(names), 'queue')}: "
            f"{', '.join(names)}.\nThis cannot be undone (-f skips this question). Go on?",
            abort=True,
        )
    with broker_errors(_broker_url(app)):
        count = purge_queues(app, names)
    if count:
        obj.echo(
            f"Purged {_plural(count, 'message')} from "
            f"{len(names)} known task {'queue' if len(names) == 1 else 'queues'}."
        )
    else:
        obj.echo(f"No messages purged from {_plural(len(names), 'queue')}.")


@celery.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def report(ctx: click.Context) -> None:
    """Print versions, platform and settings, for bug reports."""
    from celery_docket.control import report_text

    obj = _obj(ctx)
    app = obj.app
    with broker_errors(_broker_url(app)):
        obj.echo(report_text(app))


# -- info and dead letters (what Celery lacks) -----------------------------------------------


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


@celery.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-Q", "--queues", type=CommaList(), help="Only these queues.")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def info(ctx: click.Context, queues: list[str] | None, as_json: bool) -> None:
    """Per queue: ready, scheduled, reserved, running and dead-lettered tasks; the workers."""
    from celery_docket.control import queue_overview

    obj = _obj(ctx)
    app = _remote_app(obj)
    with broker_errors(_broker_url(app)):
        overview = queue_overview(app, queues)
    if as_json:
        obj.echo(json.dumps(overview))
        return
    rows = [
        [
            q,
            v["ready"],
            v["scheduled"],
            v["reserved"],
            v["running"],
            v["dead"],
            ", ".join(v["workers"]) or "-",
        ]
        for q, v in overview["queues"].items()
    ]
    obj.echo(
        _table(["QUEUE", "READY", "SCHEDULED", "RESERVED", "RUNNING", "DEAD", "WORKERS"], rows)
        if rows
        else "No queues."
    )
    obj.echo("")
    workers = overview["workers"]
    if not workers:
        obj.echo("No workers online.")
        return
    obj.echo(
        _table(
            ["WORKER", "POOL", "CONC", "ACTIVE", "RESERVED", "PROCESSED", "PID", "UP", "QUEUES"],
            [
                [
                    name,
                    w["pool"],
                    w["concurrency"],
                    w["active"],
                    w["reserved"],
                    w["processed"],
                    w["pid"],
                    _age(w["uptime"]),
                    ",".join(w["queues"]),
                ]
                for name, w in workers.items()
            ],
        )
    )


@celery.group(context_settings={"help_option_names": ["-h", "--help"]})
def dead() -> None:
    """The dead-letter streams: list, replay (retry) or delete dead-lettered tasks."""


def _dead_options(fn: Any) -> Any:
    fn = click.option("--id", "task_id", help="One entry: task id, execution id or entry id.")(fn)
    fn = click.option("-Q", "--queues", type=CommaList(), help="Only these queues.")(fn)
    return fn


def _select_dead(app: Any, queues: list[str] | None, task_id: str | None, limit: int | None) -> Any:
    from celery_docket.control import dead_entries

    entries = dead_entries(app, queues, task_id, limit)
    if task_id and not entries:
        raise click.ClickException(f"No dead-lettered task {task_id!r}.")
    return entries


@dead.command("list", context_settings={"help_option_names": ["-h", "--help"]})
@_dead_options
@click.option("-n", "--limit", type=int, default=50, show_default=True, help="Newest N (0: all).")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def dead_list(
    ctx: click.Context,
    queues: list[str] | None,
    task_id: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List dead-lettered tasks, newest first."""
    obj = _obj(ctx)
    app = _remote_app(obj)
    with broker_errors(_broker_url(app)):
        entries = _select_dead(app, queues, task_id, limit or None)
        docs = [e.as_dict(app) for e in entries]
    if as_json:
        obj.echo(json.dumps(docs, default=str))
        return
    if not docs:
        obj.echo("No dead-lettered tasks.")
        return
    obj.echo(
        _table(
            ["ENTRY", "QUEUE", "TASK ID", "NAME", "ATTEMPT", "DEAD AT", "REASON"],
            [
                [
                    d["entry"],
                    d["queue"],
                    d["id"],
                    d["name"],
                    d["attempt"],
                    (d["dead_at"] or "")[:19],
                    (d["reason"] if len(d["reason"]) <= 70 else d["reason"][:67] + "..."),
                ]
                for d in docs
            ],
        )
    )


@dead.command("retry", context_settings={"help_option_names": ["-h", "--help"]})
@_dead_options
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def dead_retry(
    ctx: click.Context, queues: list[str] | None, task_id: str | None, as_json: bool
) -> None:
    """Replay dead-lettered tasks: re-add each original message to its queue."""
    from celery_docket.control import replay_dead

    obj = _obj(ctx)
    app = _remote_app(obj)
    with broker_errors(_broker_url(app)):
        entries = _select_dead(app, queues, task_id, None)
        replayed, skipped = replay_dead(app, entries)
    if as_json:
        obj.echo(
            json.dumps(
                {
                    "replayed": [d.as_dict() for d in replayed],
                    "skipped": [{**d.as_dict(), "why": why} for d, why in skipped],
                },
                default=str,
            )
        )
        return
    for d in replayed:
        obj.echo(f"replayed {d.function}[{d.task_id}] on {d.queue}")
    for d, why in skipped:
        obj.echo(f"skipped {d.entry_id} on {d.queue}: {why}")
    obj.echo(f"Replayed {_plural(len(replayed), 'task')}.")


@dead.command("purge", context_settings={"help_option_names": ["-h", "--help"]})
@_dead_options
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def dead_purge(
    ctx: click.Context, queues: list[str] | None, task_id: str | None, force: bool
) -> None:
    """Delete dead-lettered tasks for good."""
    from celery_docket.control import purge_dead

    obj = _obj(ctx)
    app = _remote_app(obj)
    with broker_errors(_broker_url(app)):
        entries = _select_dead(app, queues, task_id, None)
        if not entries:
            obj.echo("No dead-lettered tasks.")
            return
        if not force:
            click.confirm(
                f"About to delete {_plural(len(entries), 'dead-lettered task')} for good "
                "(-f skips this question). Go on?",
                abort=True,
            )
        count = purge_dead(app, entries)
    obj.echo(f"Deleted {_plural(count, 'dead-lettered task')}.")


# -- commands that live in their own modules (imported last: they use the helpers above) ----


def _register_commands() -> None:
    """Add the commands kept in their own modules (they import this one's helpers)."""
    from .beat import beat
    from .hints import hint_commands
    from .migrate_code import migrate_code
    from .shell import shell

    for command in (beat, migrate_code, shell, *hint_commands()):
        celery.add_command(command)


if __name__ != "__main__":
    _register_commands()


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status.

    Anything that escapes a command is reported on one line; set ``CELERY_DOCKET_DEBUG=1``
    to get the traceback instead.
    """
    try:
        celery.main(args=list(argv) if argv is not None else None, prog_name="celery-docket")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EX_OK
        if isinstance(code, int):
            return code
        click.echo(str(code), err=True)
        return EX_FAILURE
    except Exception as exc:
        if os.environ.get("CELERY_DOCKET_DEBUG"):
            raise
        if isinstance(exc, _connection_errors()):
            message = f"Cannot connect to the broker: {_one_line(exc)}"
        else:
            message = f"{type(exc).__name__}: {_one_line(exc)}"
        click.echo(f"Error: {message} (CELERY_DOCKET_DEBUG=1 shows the traceback)", err=True)
        return EX_FAILURE
    return EX_OK


if __name__ == "__main__":  # pragma: no cover
    # ``python -m celery_docket.cli.main``: run the package's copy of this module, the one the
    # command modules register on (this file, run as __main__, is a second copy)
    from celery_docket.cli.main import main as _main

    sys.exit(_main())
