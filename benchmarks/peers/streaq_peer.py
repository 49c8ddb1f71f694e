"""streaQ: ``streaq run MODULE:worker --workers 2``, async tasks on anyio."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
from streaq import Worker

DIST = "streaq"
LABEL = "streaq"
URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")

worker = Worker(redis_url=URL, queue_name="bench")


@worker.task
async def noop() -> None:
    return None


@worker.task
async def echo(x: Any) -> Any:
    return x


def prefill(n: int) -> None:
    """``n`` tasks through ``enqueue_many`` (one pipeline), in chunks of 1,000."""

    async def fill() -> None:
        async with worker:
            for start in range(0, n, 1000):
                await worker.enqueue_many([noop.enqueue() for _ in range(min(1000, n - start))])

    anyio.run(fill)


def remaining(r: Any) -> int:
    """The priority streams: streaQ XDELs a message when its task is done."""
    return sum(int(r.xlen(worker.stream_key + p)) for p in worker.priorities)


def worker_commands(url: str) -> list[list[str]]:
    exe = os.path.join(os.path.dirname(sys.executable), "streaq")
    return [[exe, "run", f"{__name__}:worker", "--workers", "2"]]
