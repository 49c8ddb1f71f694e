"""Run an engine worker in a background thread for the duration of a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery_docket.engine import Worker


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
    thread.start()
    assert worker.ready.wait(10), "worker did not start"
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(15)
        assert not thread.is_alive(), "worker did not stop"
