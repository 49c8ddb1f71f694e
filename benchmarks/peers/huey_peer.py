"""huey: ``huey_consumer`` with two worker processes (``-k process -w 2``), its documented form."""

from __future__ import annotations

import os
import sys
from typing import Any

from huey import RedisHuey

DIST = "huey"
LABEL = "huey"
URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")

huey = RedisHuey("bench", url=URL, results=False)


@huey.task()
def noop() -> None:
    return None


@huey.task()
def echo(x: Any) -> Any:
    return x


def prefill(n: int) -> None:
    """``n`` calls of the task: each enqueues one message (huey has no bulk enqueue)."""
    for _ in range(n):
        noop()


def remaining(r: Any) -> int:
    """The queue list; the (at most 2) messages being run right now are not counted."""
    return int(r.llen(huey.storage.queue_key))


def worker_commands(url: str) -> list[list[str]]:
    exe = os.path.join(os.path.dirname(sys.executable), "huey_consumer")
    return [[exe, f"{__name__}.huey", "-k", "process", "-w", "2", "-q"]]
