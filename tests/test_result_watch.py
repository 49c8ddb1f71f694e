"""Subscribing to a result when the task is sent, as Celery's Redis backend does.

The sender's thread holds the subscription until ``get()`` returns or ``forget()`` runs, a
thread never holds more than ``WATCH_LIMIT`` of them, and a notice that arrives while the
thread waits for another result is kept for the later ``get()``.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from celery_docket import Celery


def _channels(app: Celery) -> set[bytes]:
    return {bytes(c) for c in app.results.backend.client.pubsub_channels("celery-task-meta-*")}


def _app(url: str, prefix: str) -> Celery:
    app = Celery(f"w{uuid.uuid4().hex[:6]}", broker=url, set_as_current=False)
    app.conf.docket_key_prefix = prefix
    return app


@pytest.mark.redis
def test_sent_task_is_subscribed_until_get_or_forget(redis_server_url: str, prefix: str) -> None:
    from celery_docket.worker import WorkController

    app = _app(redis_server_url, prefix)

    @app.task(name="watch.add")
    def add(x, y):
        return x + y

    before = _channels(app)
    r1 = add.delay(1, 2)
    r2 = add.delay(3, 4)
    ignored = add.apply_async((0, 0), ignore_result=True)
    assert _channels(app) - before == {
        f"celery-task-meta-{r1.id}".encode(),
        f"celery-task-meta-{r2.id}".encode(),
    }
    worker = WorkController(app, pool="solo", setup_logging=False)
    worker.start_in_thread()
    try:
        assert r2.get(timeout=10) == 7  # r1's notice arrives meanwhile and is kept
        assert _channels(app) - before == {f"celery-task-meta-{r1.id}".encode()}
        assert r1.get(timeout=10) == 3
        assert ignored.get(timeout=1) is None
        r3 = add.delay(5, 5)
        r3.forget()
        assert _channels(app) - before == set()
    finally:
        worker.stop()
        app.close()


def test_watched_set_is_bounded_per_thread(broker_url: str, prefix: str, monkeypatch) -> None:
    app = _app(broker_url, prefix)
    store = app.results
    monkeypatch.setattr(type(store), "WATCH_LIMIT", 5)
    monkeypatch.setattr(type(store), "DRAIN_EVERY", 3)
    ids = [uuid.uuid4().hex for _ in range(12)]
    for i in ids:
        store.watch(i)
    watched = store._local.watched
    assert list(watched) == [store.key(i) for i in ids[-5:]]
    # another thread has subscriptions of its own and none of these
    seen: list[int] = []
    t = threading.Thread(target=lambda: (store.watch("x"), seen.append(len(store._local.watched))))
    t.start()
    t.join()
    assert seen == [1]
    app.close()


def test_get_in_another_thread_than_the_sender(broker_url: str, prefix: str) -> None:
    from celery_docket.worker import WorkController

    app = _app(broker_url, prefix)

    @app.task(name="watch.echo")
    def echo(x):
        return x

    r = echo.delay("hi")
    got: list[object] = []
    worker = WorkController(app, pool="solo", setup_logging=False)
    worker.start_in_thread()
    try:
        t = threading.Thread(target=lambda: got.append(app.AsyncResult(r.id).get(timeout=10)))
        t.start()
        t.join(15)
        assert got == ["hi"]
        assert r.get(timeout=10) == "hi"
    finally:
        worker.stop()
        app.close()
