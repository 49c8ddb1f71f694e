"""``celery-docket beat``: a scheduler-only process, where ``celery beat`` is expected.

Every worker already schedules the ``beat_schedule`` entries (each tick is claimed once in
Redis), so this process is optional; it exists so a supervisor or a container that runs
``celery beat`` gets a long-running process instead of one that exits and is restarted in a
loop. ``-S django_celery_beat.schedulers:DatabaseScheduler`` adds that table's rows (see
``contrib/django/beat.py``); any other ``-S`` scheduler class is refused at start-up.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import click

from ..utils.urls import redact_url
from . import worker as _worker
from .broker import broker_errors, broker_url, check_broker
from .loader import get_context
from .options import loglevel_option, process_options

__all__ = ("beat", "check_scheduler", "use_scheduler")

#: ``-S`` values naming what this process does anyway (Celery's default scheduler).
HONOURED_SCHEDULERS = frozenset(
    {
        "celery.beat:PersistentScheduler",
        "celery.beat.PersistentScheduler",
        "celery.beat:Scheduler",
        "celery.beat.Scheduler",
        "celery_docket.beat:PersistentScheduler",
        "celery_docket.beat.PersistentScheduler",
        "celery_docket.beat:Scheduler",
        "celery_docket.beat.Scheduler",
    }
)


def check_scheduler(scheduler: str | None) -> None:
    """Refuse, on one line, a scheduler class whose schedule we would silently not run."""
    if not scheduler or scheduler.strip() in HONOURED_SCHEDULERS:
        return
    from ..contrib.django.beat import is_database_scheduler

    if is_database_scheduler(scheduler):  # django-celery-beat's rows: see use_scheduler
        return
    raise click.ClickException(
        f"--scheduler {scheduler} cannot be used with celery-docket: beat entries come from "
        "app.conf.beat_schedule and are scheduled in Redis by celery-docket itself (drop -S, "
        "and move database-defined entries into beat_schedule)."
    )


def use_scheduler(app: Any, scheduler: str | None) -> None:
    """A ``-S``/``--scheduler`` passed check_scheduler: make it the app's ``beat_scheduler``.
    django-celery-beat's needs Django, which the loaded app has set up by now if ever."""
    if not scheduler:
        return
    from ..contrib.django.beat import is_database_scheduler

    if is_database_scheduler(scheduler) and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise click.ClickException(
            f"--scheduler {scheduler} reads django_celery_beat's tables: it needs a Django "
            "project (set DJANGO_SETTINGS_MODULE)"
        )
    app.conf.beat_scheduler = scheduler.strip()


def _banner(app: Any, loglevel: str) -> str:
    from .. import __version__

    entries = app.conf.get("beat_schedule") or {}
    return "\n".join(
        [
            f"celery-docket beat v{__version__} is starting: a scheduler-only process "
            "(schedules beat entries, consumes no queue).",
            "__    -    ... __   -        _",
            f"LocalTime -> {datetime.now():%Y-%m-%d %H:%M:%S}",
            "Configuration ->",
            f"    . broker -> {redact_url(str(broker_url(app) or ''))}",
            "    . scheduler -> celery-docket (each tick claimed once in Redis; workers "
            "schedule too)",
            f"    . entries -> {len(entries)}",
            f"    . loglevel -> {loglevel}",
        ]
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--detach", is_flag=True, help="Not supported: use a process manager.")
@click.option("-s", "--schedule", help="Accepted; no schedule file is needed.")
@click.option(
    "-S",
    "--scheduler",
    help="Only Celery's default (celery.beat:PersistentScheduler); others are refused.",
)
@click.option("--max-interval", type=int, help="Accepted.")
@loglevel_option()
@process_options(uid_help="Accepted.", gid_help="Accepted.")
@click.option("--scheduler-only", is_flag=True, help="Accepted: what beat always does here.")
@click.pass_context
def beat(
    ctx: click.Context,
    detach: bool,
    schedule: str | None,
    scheduler: str | None,
    max_interval: int | None,
    loglevel: str,
    logfile: str | None,
    pidfile: str | None,
    uid: str | None,
    gid: str | None,
    umask: str | None,
    executable: str | None,
    scheduler_only: bool,
) -> None:
    """Run a scheduler-only process: it schedules beat entries and consumes no queue.

    Workers schedule the entries too (each tick is sent once, however many run), so this
    process is optional; it keeps a `celery beat` service definition working.
    """
    obj = get_context(ctx)
    check_scheduler(scheduler)
    if detach:
        raise click.ClickException(
            "--detach is not supported: run beat under a process manager instead."
        )
    app = obj.app
    use_scheduler(app, scheduler)
    url = broker_url(app)
    level = loglevel.upper().replace("FATAL", "CRITICAL")
    check_broker(url, conf=app.conf)
    with _worker.pidfile_lock(pidfile), broker_errors(url):
        controller = _worker.make_worker(  # looked up at call time: tests replace it
            app, pool="solo", queues=[], beat=True, loglevel=level, logfile=logfile
        )
        if not obj.quiet:
            obj.echo(_banner(app, level))
        code = controller.start()
    ctx.exit(int(code or 0))
