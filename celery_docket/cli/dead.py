"""``celery-docket dead``: list, replay (retry) or delete dead-lettered tasks."""

from __future__ import annotations

import json
from typing import Any

import click

from .broker import broker_errors, broker_url, remote_app
from .loader import get_context
from .options import CommaList
from .output import plural, table

__all__ = ("dead",)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    obj = get_context(ctx)
    app = remote_app(obj)
    with broker_errors(broker_url(app)):
        entries = _select_dead(app, queues, task_id, limit or None)
        docs = [e.as_dict(app) for e in entries]
    if as_json:
        obj.echo(json.dumps(docs, default=str))
        return
    if not docs:
        obj.echo("No dead-lettered tasks.")
        return
    obj.echo(
        table(
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

    obj = get_context(ctx)
    app = remote_app(obj)
    with broker_errors(broker_url(app)):
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
    obj.echo(f"Replayed {plural(len(replayed), 'task')}.")


@dead.command("purge", context_settings={"help_option_names": ["-h", "--help"]})
@_dead_options
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def dead_purge(
    ctx: click.Context, queues: list[str] | None, task_id: str | None, force: bool
) -> None:
    """Delete dead-lettered tasks for good."""
    from celery_docket.control import purge_dead

    obj = get_context(ctx)
    app = remote_app(obj)
    with broker_errors(broker_url(app)):
        entries = _select_dead(app, queues, task_id, None)
        if not entries:
            obj.echo("No dead-lettered tasks.")
            return
        if not force:
            click.confirm(
                f"About to delete {plural(len(entries), 'dead-lettered task')} for good "
                "(-f skips this question). Go on?",
                abort=True,
            )
        count = purge_dead(app, entries)
    obj.echo(f"Deleted {plural(count, 'dead-lettered task')}.")
