"""Demo tasks: a plain task, a task that retries, a chain and a periodic tick."""

from __future__ import annotations

import threading
from typing import Any

from celery_docket.signals import worker_ready
from celery_docket.utils.log import get_task_logger

from .celery import app

logger = get_task_logger(__name__)

try:  # chains need celery_docket.canvas
    from celery_docket.canvas import chain as _chain
except ImportError:  # pragma: no cover - canvas not available
    _chain = None


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def mul(x: int, y: int) -> int:
    return x * y


@app.task(bind=True, max_retries=3)
def flaky(self: Any, value: str) -> str:
    """Fails on its first two runs, then succeeds: shows ``self.retry``."""
    if self.request.retries < 2:
        logger.info("flaky: attempt %d failed, retrying in 1s", self.request.retries + 1)
        raise self.retry(exc=RuntimeError("not yet"), countdown=1)
    return f"{value} after {self.request.retries} retries"


@app.task
def tick() -> str:
    logger.info("tick")
    return "tick"


def send_demo_calls() -> dict[str, Any]:
    """Send one of each demo call; returns their AsyncResults by name."""
    results: dict[str, Any] = {
        "add": add.delay(2, 2),
        "flaky": flaky.delay("done"),
    }
    if _chain is not None:
        # (2 + 2) * 4 = 16
        results["chain"] = (add.s(2, 2) | mul.s(4)).delay()
    return results


def _report(results: dict[str, Any]) -> None:
    for name, result in results.items():
        try:
            value = result.get(timeout=30)
        except Exception as exc:  # noqa: BLE001 - a demo: show the failure, keep the worker running
            logger.warning("demo %s failed: %r", name, exc)
        else:
            logger.info("demo %s -> %r", name, value)


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """Send the demo calls once the worker consumes, and log their results."""
    results = send_demo_calls()
    # Wait in a thread of our own: a signal handler must not block the worker.
    threading.Thread(target=_report, args=(results,), name="demo-report", daemon=True).start()
