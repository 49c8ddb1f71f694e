"""``celery-docket purge``: delete the waiting tasks of the app's queues, after asking."""

from __future__ import annotations

import click

from .broker import broker_errors, broker_url, remote_app
from .loader import get_context
from .options import CommaList
from .output import plural

__all__ = ("purge",)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
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

    obj = get_context(ctx)
    app = remote_app(obj)
    names = sorted(set(queues or app_queues(app)) - set(exclude_queues or ()))
    if not names:
        obj.echo("No queues to purge.")
        return
    if not force:
        click.confirm(
            f"About to delete every waiting task of {plural(len(names), 'queue')}: "
            f"{', '.join(names)}.\nThis cannot be undone (-f skips this question). Go on?",
            abort=True,
        )
    with broker_errors(broker_url(app)):
        count = purge_queues(app, names)
    if count:
        obj.echo(
            f"Purged {plural(count, 'message')} from "
            f"{len(names)} known task {'queue' if len(names) == 1 else 'queues'}."
        )
    else:
        obj.echo(f"No messages purged from {plural(len(names), 'queue')}.")
