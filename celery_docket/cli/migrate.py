"""``celery-docket migrate``: drain a Celery deployment's Redis queues into ours, or back.

One shot, safe to repeat: each message moves in one atomic step (see
``celery_docket/cutover``), so a second run, or a run beside workers with ``--celery-intake``,
moves nothing twice. ``--dry-run`` counts per queue and per task name and changes nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import click

from .broker import broker_errors, remote_app
from .loader import get_context
from .options import CommaList


def _queues(app: Any, mover_queues: list[str], queues: list[str] | None) -> list[str]:
    if queues:
        return list(queues)
    configured = [str(getattr(q, "name", q)) for q in app.conf.get("task_queues") or ()]
    default = str(app.conf.get("task_default_queue") or "celery")
    return sorted({*configured, default, *mover_queues})


def _known_tasks(app: Any) -> set[str] | None:
    try:
        app.loader_import_modules()
        app.finalize()
        return set(app.tasks)
    except Exception:  # noqa: BLE001 - a broken task module is the worker's to report
        return None


def _by_task(
    counter: Counter[str], echo: Any, limit: int = 20, known: set[str] | None = None
) -> None:
    for name, n in counter.most_common(limit):
        unknown = known is not None and name not in known
        echo(f"    {n:>8}  {name}" + ("  (not registered in this app)" if unknown else ""))
    if len(counter) > limit:
        echo(f"    {sum(counter.values()) - sum(n for _, n in counter.most_common(limit)):>8}"
             f"  ({len(counter) - limit} other task names)")  # fmt: skip


@click.command("migrate", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-Q", "--queues", type=CommaList(), help="Only these queues (default: all found).")
@click.option("--dry-run", is_flag=True, help="Count what would move, per queue and task name.")
@click.option("--to-celery", is_flag=True, help="The way back: our waiting work to Celery's lists.")
@click.option(
    "--unacked-age",
    type=float,
    help="Seconds after which a Celery-reserved message is orphaned "
    "(default: docket_celery_unacked_age, else Celery's visibility_timeout).",
)
@click.option("--force", is_flag=True, help="--to-celery even while our workers run.")
@click.pass_context
def migrate(
    ctx: click.Context,
    queues: list[str] | None,
    dry_run: bool,
    to_celery: bool,
    unacked_age: float | None,
    force: bool,
) -> None:
    """Move Celery's waiting, ETA and orphaned reserved messages into celery_docket.

    \b
    $ celery-docket -A proj migrate --dry-run
    $ celery-docket -A proj migrate
    $ celery-docket -A proj migrate --to-celery      # roll back (stop our workers first)
    """
    obj = get_context(ctx)
    app = remote_app(obj)
    with broker_errors(str(app.broker_url)):
        if to_celery:
            _back(obj, app, queues, dry_run, force)
        else:
            _forward(obj, app, queues, dry_run, unacked_age)


def _forward(
    obj: Any, app: Any, queues: list[str] | None, dry_run: bool, age: float | None
) -> None:
    from ..cutover import Mover

    mover = Mover(app, unacked_age=age)
    names = _queues(app, mover.celery_queues(), queues)
    census = mover.census(names)
    waiting = census.movable()
    for q in names:
        ready, orphaned, reserved = census.ready[q], census.orphaned[q], census.reserved[q]
        if ready or orphaned or reserved:
            obj.echo(
                f"{q}: {ready} ready ({census.eta[q]} with an ETA), {orphaned} reserved by a "
                f"Celery worker that is gone, {reserved} reserved less than "
                f"{mover.unacked_age:.0f} s ago (left alone)"
            )
    if census.by_task:
        obj.echo("by task:")
        _by_task(census.by_task, obj.echo, known=_known_tasks(app))
    if dry_run:
        obj.echo(f"Dry run: {waiting} message(s) would move from Celery's queues {names}.")
        return
    if not waiting:
        obj.echo(f"Nothing to move from Celery's queues {names}.")
        return
    started = time.monotonic()
    shown = [0.0]

    def progress(t: Any) -> None:
        if time.monotonic() - shown[0] >= 1.0:
            shown[0] = time.monotonic()
            obj.echo(f"  ... {t.total} of {waiting} moved")

    tally = mover.drain(names, progress=progress)
    took = max(time.monotonic() - started, 1e-6)
    obj.echo(
        f"Moved {tally.total} message(s) in {took:.1f} s ({tally.total / took:.0f}/s): "
        + ", ".join(f"{q}: {n}" for q, n in sorted(tally.moved.items()))
        + f"; {tally.parked} parked until their ETA."
    )
    if tally.duplicates or tally.gone:
        obj.echo(
            f"{tally.duplicates} duplicate(s) of messages already moved were dropped; "
            f"{tally.gone} were taken by someone else first."
        )
    if tally.refused or tally.unreadable:
        obj.warn(
            f"{tally.refused} message(s) of a content type the app does not accept and "
            f"{tally.unreadable} unreadable one(s) were left in Celery's lists."
        )


def _back(obj: Any, app: Any, queues: list[str] | None, dry_run: bool, force: bool) -> None:
    from ..cutover.back import LiveWorkers, Returner

    back = Returner(app)
    names = _queues(app, back.docket.queues(), queues)
    started = time.monotonic()
    try:
        tally = back.run(names, dry_run=dry_run, force=force)
    except LiveWorkers as exc:
        raise click.ClickException(str(exc)) from None
    took = max(time.monotonic() - started, 1e-6)
    verb = "would go back" if dry_run else "went back"
    obj.echo(
        f"{tally.total} message(s) {verb} to Celery's lists ({tally.parked} with an ETA)"
        + ("" if dry_run else f" in {took:.1f} s")
        + (": " + ", ".join(f"{q}: {n}" for q, n in sorted(tally.moved.items())) if tally.moved else ".")
    )  # fmt: skip
    if tally.by_task:
        obj.echo("by task:")
        _by_task(tally.by_task, obj.echo)
    if tally.perpetual or tally.foreign:
        obj.echo(
            f"Left here: {tally.perpetual} perpetual/beat execution(s) (Celery beat owns them "
            f"again), {tally.foreign} native engine call(s) that are not Celery tasks."
        )


def celery_backlog_warning(obj: Any, app: Any, queues: list[str]) -> None:
    """``info``: say so when Celery's lists hold messages for these queues."""
    try:
        from ..cutover.intake import backlog_hint

        hint = backlog_hint(app, queues)
    except Exception:  # noqa: BLE001 - the backlog hint is advice: never fail the command over it
        return
    if hint:
        obj.warn(hint)
