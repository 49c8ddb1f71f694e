"""``celery-docket top``: the live view of :mod:`celery_docket.top` as a command."""

from __future__ import annotations

import click

__all__ = ("top",)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-Q", "--queues", help="Only these queues, comma separated.")
@click.option("-i", "--interval", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("-n", "--iterations", type=int, help="Stop after this many refreshes.")
@click.option("--once", is_flag=True, help="Print one frame and exit (no rates yet).")
@click.option("--no-screen", is_flag=True, help="Draw in place, not on the alternate screen.")
@click.pass_context
def top(
    ctx: click.Context,
    queues: str | None,
    interval: float,
    iterations: int | None,
    once: bool,
    no_screen: bool,
) -> None:
    """A live view: queues (ready, parked, running, dead, rates), workers and their active
    tasks, and a throughput sparkline, refreshed every second (Ctrl-C to quit)."""
    try:
        from rich.console import Console
    except ImportError:
        raise click.ClickException(
            "celery-docket top needs rich: pip install 'celery-docket[top]'"
        ) from None
    from celery_docket.top import read_sample, run
    from celery_docket.top.render import render

    obj = ctx.find_root().obj
    app = obj.app
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    if once:
        Console().print(render(read_sample(app, names)))
        return
    run(app, names, interval=interval, iterations=iterations, screen=not no_screen)
