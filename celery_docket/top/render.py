"""Draw one :class:`~.sampler.Sample` as a terminal screen, with ``rich``.

Kept apart from reading Redis so a test can render a hand-made sample and read the text.
``rich`` draws the tables, sizes them to the terminal and, through ``Live``, redraws in
place without flicker; we only choose what goes in the cells (the sparkline is ours: rich
has no such widget).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .sampler import Sample

BARS = "▁▂▃▄▅▆▇█"
#: active tasks listed per worker before "+N more"
ACTIVE_SHOWN = 4


def sparkline(values: Iterable[float], width: int = 60) -> str:
    """One block character per value, scaled to the largest (all-zero: the lowest bar)."""
    data = list(values)[-width:]
    if not data:
        return ""
    top = max(data)
    if top <= 0:
        return BARS[0] * len(data)
    return "".join(BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))] for v in data)


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _active(tasks: list[dict[str, Any]], now: float) -> str:
    parts = []
    for t in tasks[:ACTIVE_SHOWN]:
        started = t.get("time_start")
        age = f" {_duration(now - float(started))}" if started else ""
        parts.append(f"{t.get('name') or t.get('type') or '?'}[{str(t.get('id'))[:8]}]{age}")
    if len(tasks) > ACTIVE_SHOWN:
        parts.append(f"+{len(tasks) - ACTIVE_SHOWN} more")
    return ", ".join(parts) or "-"


def queues_table(sample: Sample) -> Table:
    table = Table(title="Queues", title_justify="left", expand=False, box=None, pad_edge=False)
    for name, justify in (
        ("QUEUE", "left"),
        ("READY", "right"),
        ("PARKED", "right"),
        ("RESERVED", "right"),
        ("RUNNING", "right"),
        ("DEAD", "right"),
        ("IN/s", "right"),
        ("DONE/s", "right"),
        ("WORKERS", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "WORKERS")  # type: ignore[arg-type]
    for q in sample.queues:
        table.add_row(
            Text(q.name),
            str(q.ready),
            str(q.parked),
            str(q.reserved),
            str(q.running),
            Text(str(q.dead), style="bold red" if q.dead else ""),
            _rate(q.in_rate),
            _rate(q.done_rate),
            Text(", ".join(q.workers) or "-"),
        )
    if not sample.queues:
        table.add_row("(no queues)", *[""] * 8)
    return table


def workers_table(sample: Sample) -> Table:
    table = Table(title="Workers", title_justify="left", expand=False, box=None, pad_edge=False)
    table.add_column("WORKER", no_wrap=True)
    table.add_column("POOL", no_wrap=True)
    table.add_column("BUSY", justify="right", no_wrap=True)
    table.add_column("PROCESSED", justify="right", no_wrap=True)
    table.add_column("UP", justify="right", no_wrap=True)
    table.add_column("ACTIVE TASKS")
    for w in sample.workers:
        table.add_row(
            Text(w.name),
            Text(w.pool),
            f"{len(w.active)}/{w.concurrency}",
            str(w.processed),
            _duration(w.uptime),
            Text(_active(w.active, sample.at)),  # Text: task names are not rich markup
        )
    if not sample.workers:
        table.add_row("(no workers online)", "", "", "", "", "")
    return table


def render(sample: Sample, history: Iterable[float] = (), width: int = 60) -> RenderableType:
    """The whole screen for one sample."""
    clock = time.strftime("%H:%M:%S", time.localtime(sample.at))
    totals = (
        f"ready {sum(q.ready for q in sample.queues)}  "
        f"parked {sum(q.parked for q in sample.queues)}  "
        f"running {sum(q.running for q in sample.queues)}  "
        f"dead {sum(q.dead for q in sample.queues)}"
    )
    header = Text.assemble(
        ("celery-docket top", "bold"),
        (f"  {sample.broker}  {clock}  ", ""),
        f"{len(sample.workers)} worker(s)  {totals}",
    )
    values = list(history)
    spark = Text.assemble(
        ("throughput ", "bold"),
        (sparkline(values, width) or "-", "green"),
        f"  {_rate(sample.throughput)} tasks/s",
        f"  (max {_rate(max(values))})" if values else "",
    )
    return Group(
        header, Text(""), queues_table(sample), Text(""), workers_table(sample), Text(""), spark
    )
