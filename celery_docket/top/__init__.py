"""``celery-docket top``: a live terminal view of queues, workers and throughput.

Built on the Redis snapshot ``celery-docket info`` reads (:mod:`.sampler`), drawn with
``rich`` (:mod:`.render`, the optional extra ``top``). :func:`run` refreshes once a second
until interrupted, or for ``iterations`` refreshes.
"""

from __future__ import annotations

import time
from typing import Any

from .sampler import Sample, Sampler, read_sample, with_rates

__all__ = ["Sample", "Sampler", "read_sample", "run", "with_rates"]


def _frame(sampler: Sampler, render: Any) -> Any:
    """The next screen; while Redis cannot be read, the last one with the error under it."""
    from rich.console import Group
    from rich.text import Text

    try:
        return render(sampler.sample(), sampler.history)
    except Exception as exc:  # noqa: BLE001 - a Redis blip must not end the view
        shown = f"cannot read Redis ({type(exc).__name__}: {exc}); retrying"
        if sampler.last is None:
            return Text(shown, style="bold red")
        return Group(render(sampler.last, sampler.history), Text(shown, style="bold red"))


def run(
    app: Any,
    queues: list[str] | None = None,
    interval: float = 1.0,
    iterations: int | None = None,
    console: Any = None,
    screen: bool = True,
) -> int:
    """Show the view, refreshed every ``interval`` s; returns the refreshes drawn.

    ``iterations`` stops after that many; ``screen`` uses the terminal's alternate screen
    (off: the last frame stays on the terminal when it ends).
    """
    from rich.console import Console
    from rich.live import Live

    from .render import render

    console = console or Console()
    sampler = Sampler(app, queues)
    drawn = 0
    first = sampler.sample()
    with Live(
        render(first, sampler.history),
        console=console,
        screen=screen,
        auto_refresh=False,
        transient=False,
    ) as live:
        drawn = 1
        try:
            while iterations is None or drawn < iterations:
                time.sleep(interval)
                live.update(_frame(sampler, render), refresh=True)
                drawn += 1
        except KeyboardInterrupt:
            pass
    return drawn
