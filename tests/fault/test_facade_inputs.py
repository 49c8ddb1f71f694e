"""Bad input and misbehaving tasks through the Celery API, on a real redis-server: each
ends in a stored FAILURE (so ``get()`` raises instead of waiting) and the worker goes on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from celery_docket import Celery, states
from celery_docket.exceptions import WorkerLostError
from celery_docket.worker import WorkController

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(60)]


@pytest.fixture
def app(redis_server_url: str, prefix: str) -> Iterator[Celery]:
    a = Celery(f"fi{uuid.uuid4().hex[:6]}", broker=redis_server_url, set_as_current=False)
    a.conf.docket_key_prefix = prefix
    a.conf.docket_lease_seconds = 2

    @a.task(name="fi.add")
    def add(x: int, y: int) -> int:
        return x + y

    @a.task(name="fi.exit")
    def exits() -> None:
        raise SystemExit(3)

    yield a
    a.close()


@pytest.fixture
def worker(app: Celery) -> Iterator[WorkController]:
    w = WorkController(app, pool="threads", concurrency=1, setup_logging=False).start_in_thread()
    try:
        yield w
    finally:
        w.stop()


def dead_reasons(app: Celery) -> list[str]:
    dead = app.docket.redis.xrange(app.docket.keys("celery").dead)
    return [f[b"r"].decode() for _m, f in dead]


def test_task_raising_system_exit_is_a_failure(app: Celery, worker: WorkController) -> None:
    """Like Celery: a task that raises SystemExit is FAILURE (WorkerLostError), and the
    one-slot worker runs the next task."""
    r = app.tasks["fi.exit"].delay()
    with pytest.raises(WorkerLostError, match="SystemExit"):
        r.get(timeout=10)
    assert r.state == states.FAILURE
    assert app.tasks["fi.add"].delay(2, 3).get(timeout=10) == 5
