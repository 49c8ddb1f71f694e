"""dramatiq: the ``dramatiq`` CLI with ``--processes 2`` (threads at its default, 8 each)."""

from __future__ import annotations

import os
import sys
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

DIST = "dramatiq"
LABEL = "dramatiq"
URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
QUEUE = "default"

broker = RedisBroker(url=URL, namespace="dramatiq")
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop() -> None:
    return None


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def echo(x: Any) -> Any:
    return x


def prefill(n: int) -> None:
    """``n`` sends, one message each (what an application does)."""
    for _ in range(n):
        noop.send()


def remaining(r: Any) -> int:
    """The message hash of the queue: a message leaves it when its worker acks it."""
    return int(r.hlen(f"dramatiq:{QUEUE}.msgs"))


def worker_commands(url: str) -> list[list[str]]:
    exe = os.path.join(os.path.dirname(sys.executable), "dramatiq")
    return [[exe, __name__, "--processes", "2", "--skip-logging"]]
