"""``celery-docket worker``: Celery's worker command and flags, on the engine's worker.

Flags with no meaning here are accepted so deployment scripts keep working, and either ignored
or answered with a warning; pools we do not have (gevent, eventlet) are refused with advice.
Task modules are imported before the banner so a broken one is reported on one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import import_module
from typing import Any

import click

from ..utils.nodenames import default_nodename, host_format
from .broker import broker_errors, broker_url, check_broker, one_line
from .loader import get_context, where
from .options import (
    POOLS,
    UNSUPPORTED_POOLS,
    Autoscale,
    CommaList,
    Concurrency,
    PoolChoice,
    loglevel_option,
    process_options,
)

__all__ = ("make_worker", "pidfile_lock", "queue_names", "task_modules", "worker")


@contextmanager
def pidfile_lock(path: str | None) -> Iterator[None]:
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


def queue_names(app: Any, queues: Sequence[str] | None, exclude: Sequence[str]) -> list[str] | None:
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


def task_modules(app: Any, extra: Sequence[str]) -> list[str]:
    """``-I`` modules, then the app's ``imports`` and ``include`` settings."""
    modules = list(extra)
    for key in ("imports", "include"):
        try:
            value = app.conf.get(key) or ()
        except Exception:  # noqa: BLE001 - a broken config value must not hide the modules found elsewhere
            value = ()
        modules += [value] if isinstance(value, str) else list(value)
    return list(dict.fromkeys(modules))


def make_worker(app: Any, **options: Any) -> Any:
    """The worker the ``worker`` and ``beat`` commands start (tests replace it)."""
    from ..worker import WorkController

    return WorkController(app, **options)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--hostname", help="Node name, e.g. 'w1@%h'; expands %h, %n and %d.")
@click.option("-D", "--detach", is_flag=True, help="Not supported: use a process manager.")
@click.option("-S", "--statedb", help="Accepted: revokes are already persistent.")
@loglevel_option(help="Logging level.")
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
@process_options(
    uid_help="Accepted; run the worker as the user you want.",
    gid_help="Accepted; run the worker as the group you want.",
)
@click.option("--celery-intake", is_flag=True, help="Also run Celery's queued messages (cutover).")
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
    celery_intake: bool = False,
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

    obj = get_context(ctx)
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
    for module in [*task_modules(app, include or []), None]:
        try:
            import_module(module) if module else app.run_autodiscovery()
        except Exception as exc:  # noqa: BLE001 - whatever the user's task module raises is reported
            raise click.ClickException(
                f"Cannot import the task module {module or 'found by autodiscover_tasks()'}: "
                f"{type(exc).__name__}: {one_line(exc)}{where(exc)}"
            ) from None
    if prefetch_multiplier is not None:
        app.conf.worker_prefetch_multiplier = prefetch_multiplier
    if task_events:
        app.conf.worker_send_task_events = True
    if celery_intake:
        app.conf.docket_celery_intake = True
    if obj.no_color:
        app.conf.worker_log_color = False

    nodename = host_format(default_nodename(hostname)) if hostname else None
    node_host = nodename.partition("@")[2] if nodename else None
    logfile = host_format(logfile, node_host) if logfile else None
    pidfile = host_format(pidfile, node_host) if pidfile else None
    url = broker_url(app)

    check_broker(url, conf=app.conf)
    with pidfile_lock(pidfile), broker_errors(url):
        controller = make_worker(
            app,
            pool=pool,
            concurrency=concurrency,
            queues=queue_names(app, queues, exclude_queues or []),
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
