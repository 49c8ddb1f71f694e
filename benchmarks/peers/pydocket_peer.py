"""pydocket: two ``docket worker`` processes (concurrency at its default, 10 each)."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from docket import Docket

DIST = "pydocket"
LABEL = "pydocket"
URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
NAME = "bench"


async def noop() -> None:
    return None


async def echo(x: Any) -> Any:
    return x


tasks = [noop, echo]
"""The task collection the CLI registers (``--tasks MODULE:tasks``)."""


def prefill(n: int) -> None:
    """``n`` ``docket.add(noop)()`` calls, one after the other."""

    async def fill() -> None:
        async with Docket(name=NAME, url=URL) as docket:
            for _ in range(n):
                await docket.add(noop)()

    asyncio.run(fill())


def remaining(r: Any) -> int:
    """Stream entries not yet read or not yet acked, plus the scheduled queue."""
    stream, queue = f"{NAME}:stream", f"{NAME}:queue"
    groups = r.xinfo_groups(stream) if r.exists(stream) else []
    if not groups:
        return int(r.xlen(stream) if r.exists(stream) else 0) + int(r.zcard(queue))
    g = groups[0]
    lag = g.get("lag")
    unread = int(lag) if lag is not None else int(r.xlen(stream))
    return unread + int(g["pending"]) + int(r.zcard(queue))


def worker_commands(url: str) -> list[list[str]]:
    exe = os.path.join(os.path.dirname(sys.executable), "docket")
    cmd = [exe, "worker", "--tasks", f"{__name__}:tasks", "--url", url, "--docket", NAME]
    return [[*cmd, "--name", f"bench-{i}", "--logging-level", "WARNING"] for i in range(2)]
