"""Subscribing to a result when the task is sent, as Celery's Redis backend does.

The sender's thread holds the subscription until ``get()`` returns or ``forget()`` runs, a
thread never holds more than ``WATCH_LIMIT`` of them, and a notice that arrives while the
thread waits for another result is kept for the later ``get()``.
"""

from __future__ import annotations

import threading
import time
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


@pytest.mark.redis
def test_dropped_watches_are_unsubscribed_in_batches_and_a_rewatch_survives(
    redis_server_url: str, prefix: str, monkeypatch
) -> None:
    """Past the limit, the oldest watches leave in one UNSUBSCRIBE per batch; a key watched
    again before its batch leaves stays subscribed, and its wait gets the notice."""
    app = _app(redis_server_url, prefix)
    store = app.results
    monkeypatch.setattr(type(store), "WATCH_LIMIT", 4)
    monkeypatch.setattr(type(store), "RETIRE_BATCH", 3)
    before = _channels(app)
    ids = [uuid.uuid4().hex for _ in range(6)]
    for i in ids:
        store.watch(i)  # ids[0] and ids[1] are retired, still subscribed (batch not full)
    assert _channels(app) - before == {store.key(i).encode() for i in ids}
    store.watch(ids[0])  # watched again: no longer retired
    store.watch(uuid.uuid4().hex)  # a third retirement fills the batch: one UNSUBSCRIBE
    deadline = time.monotonic() + 5  # the UNSUBSCRIBE is sent without waiting for its reply
    while store.key(ids[1]).encode() in _channels(app) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = _channels(app) - before
    assert store.key(ids[1]).encode() not in left and store.key(ids[2]).encode() not in left
    assert store.key(ids[0]).encode() in left
    store.set(ids[0], b"done", 60_000)  # publishes on the key's channel
    assert store.wait(ids[0], timeout=5) == b"done"
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
