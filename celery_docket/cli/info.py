"""``celery-docket info`` and ``report``: queues and workers at a glance, and the text for a
bug report.

``info`` is what Celery lacks: per queue, how many tasks are ready, scheduled, reserved,
running and dead-lettered, and which workers consume it, read from Redis in a few round trips.
"""

from __future__ import annotations

import json

import click

from .broker import broker_errors, broker_url, remote_app
from .loader import get_context
from .options import CommaList
from .output import age, table

__all__ = ("info", "report")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def report(ctx: click.Context) -> None:
    """Print versions, platform and settings, for bug reports."""
    from celery_docket.control import report_text

    obj = get_context(ctx)
    app = obj.app
    with broker_errors(broker_url(app)):
        obj.echo(report_text(app))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-Q", "--queues", type=CommaList(), help="Only these queues.")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def info(ctx: click.Context, queues: list[str] | None, as_json: bool) -> None:
    """Per queue: ready, scheduled, reserved, running and dead-lettered tasks; the workers."""
    from celery_docket.control import queue_overview

    obj = get_context(ctx)
    app = remote_app(obj)
    with broker_errors(broker_url(app)):
        overview = queue_overview(app, queues)
    from .migrate import celery_backlog_warning

    celery_backlog_warning(obj, app, queues or [*overview["queues"], app.conf.task_default_queue])
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
        table(["QUEUE", "READY", "SCHEDULED", "RESERVED", "RUNNING", "DEAD", "WORKERS"], rows)
        if rows
        else "No queues."
    )
    obj.echo("")
    workers = overview["workers"]
    if not workers:
        obj.echo("No workers online.")
        return
    obj.echo(
        table(
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
                    age(w["uptime"]),
                    ",".join(w["queues"]),
                ]
                for name, w in workers.items()
            ],
        )
    )
