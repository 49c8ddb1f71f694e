"""Task and worker events in Celery's format, checked against real Celery's own event
receiver and state on a real redis-server (and our receiver on memory://)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from celery_docket import Celery, signals
from celery_docket.events import EventDispatcher, State
from celery_docket.events import worker as worker_events
from celery_docket.events.receiver import decode_envelope
from celery_docket.worker import WorkController
from tests.redis_server import RedisServer

celery = pytest.importorskip("celery")
celery_state = pytest.importorskip("celery.events.state")


@pytest.fixture(scope="module")
def events_redis() -> Iterator[str]:
    """A server of our own: event channels are per database, not per key prefix."""
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


def wait_until(check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def subscribers(client: redis.Redis) -> int:
    """Connections subscribed to a pattern (NUMPAT counts patterns, not subscribers)."""
    return sum(1 for c in client.client_list() if int(c.get("psub") or 0) > 0)


def celery_capture(url: str, state: Any) -> tuple[threading.Thread, Any]:
    """Real Celery's EventReceiver feeding ``state`` from a thread; subscribed on return."""
    capp = celery.Celery("watcher", broker=url, set_as_current=False)
    conn = capp.connection_for_read()
    recv = capp.events.Receiver(conn, handlers={"*": state.event})
    client = redis.Redis.from_url(url)
    before = subscribers(client)
    thread = threading.Thread(target=lambda: recv.capture(limit=None, timeout=None), daemon=True)
    thread.start()
    wait_until(lambda: subscribers(client) > before, what="psubscribe")
    return thread, (recv, conn)


def stop_capture(handle: Any) -> None:
    recv, conn = handle
    recv.should_stop = True
    conn.release()


def test_envelope_is_what_kombu_decodes() -> None:
    """Our envelope, through kombu's own virtual-transport message decoding."""
    import json

    from kombu import Connection
    from kombu.transport.virtual import Message

    app = Celery("e", broker="memory://env", set_as_current=False)
    d = EventDispatcher(app=app, hostname="w@h")
    event = d.build("task-succeeded", {"uuid": "u1", "result": "5", "runtime": 0.5})
    from celery_docket.events.dispatcher import envelope

    raw = envelope(event, "task.succeeded", "w@h")
    with Connection("memory://") as conn:
        message = Message(json.loads(raw), channel=conn.default_channel)
        body = message.decode()
    assert body["type"] == "task-succeeded" and body["uuid"] == "u1" and body["clock"] >= 1
    assert message.delivery_info["exchange"] == "celeryev"
    assert message.headers == {"hostname": "w@h"}
    assert decode_envelope(raw) == [body]


@pytest.mark.redis
def test_real_celery_receiver_hears_our_dispatcher(events_redis: str) -> None:
    state = celery_state.State()
    thread, handle = celery_capture(events_redis, state)
    try:
        app = Celery("e", broker=events_redis, set_as_current=False)
        d = app.events.Dispatcher(hostname="w1@host")
        d.send("worker-online", freq=2.0, active=0, processed=0, sw_ident="celery-docket")
        d.send("task-received", uuid="t1", name="proj.add", args="(1, 2)", kwargs="{}")
        d.send("task-started", uuid="t1")
        d.send("task-succeeded", uuid="t1", result="3", runtime=0.01)
        wait_until(lambda: state.tasks.get("t1") and state.tasks["t1"].state == "SUCCESS")
    finally:
        stop_capture(handle)
    task = state.tasks["t1"]
    assert (task.name, task.args, task.result, task.worker.hostname) == (
        "proj.add",
        "(1, 2)",
        "3",
        "w1@host",
    )
    assert state.workers["w1@host"].alive


@pytest.mark.redis
def test_worker_with_events_publishes_the_task_lifecycle(events_redis: str) -> None:
    tag = uuid.uuid4().hex[:6]
    app = Celery(f"ev{tag}", broker=events_redis, set_as_current=False)
    app.conf.docket_key_prefix = f"ev{tag}"
    app.conf.worker_send_task_events = True
    app.conf.task_send_sent_event = True

    @app.task(name="ev.ok")
    def ok(x: int) -> int:
        return x * 2

    @app.task(name="ev.bad")
    def bad() -> None:
        raise KeyError("no")

    @app.task(name="ev.again", bind=True, max_retries=1)
    def again(self: Any) -> str:
        if not self.request.retries:
            raise self.retry(countdown=0)
        return "done"

    state = celery_state.State()
    thread, handle = celery_capture(events_redis, state)
    w = WorkController(app, pool="threads", concurrency=2, setup_logging=False, hostname="ev@h")
    try:
        w.start_in_thread()
        revoked = ok.apply_async((0,), countdown=0.5)
        app.control.revoke(revoked.id)
        results = [ok.delay(21), bad.delay(), again.delay()]
        wait_until(lambda: all(r.ready() for r in results), what="results")
        wait_until(lambda: revoked.state == "REVOKED", what="revoked")
        ids = [r.id for r in results] + [revoked.id]
        wait_until(
            lambda: all(i in state.tasks and state.tasks[i].ready for i in ids), what="events"
        )
        wait_until(lambda: "ev@h" in state.workers, what="worker-online")
    finally:
        w.stop()
        time.sleep(0.3)
        stop_capture(handle)
    good, failed, retried, rev = (state.tasks[i] for i in ids)
    assert (good.state, good.result, good.name, good.args) == ("SUCCESS", "42", "ev.ok", "[21]")
    assert good.runtime is not None and good.sent and good.received and good.started
    assert good.worker.hostname == "ev@h" and good.client.startswith("gen")
    assert failed.state == "FAILURE" and failed.exception == "KeyError('no')"
    assert "KeyError" in failed.traceback
    assert retried.state == "SUCCESS" and retried.retried and retried.retries == 1
    assert rev.state == "REVOKED"
    node = state.workers["ev@h"]
    assert node.sw_ident == "celery-docket" and node.freq == 2.0
    assert not node.alive  # worker-offline was sent when it stopped


def test_events_off_connects_no_receiver() -> None:
    app = Celery("off", broker="memory://off", set_as_current=False)
    w = WorkController(app, pool="solo", setup_logging=False)
    w._prepare()
    assert worker_events._dispatcher is None
    assert signals.task_prerun.has_listeners() is False or all(
        "celery_docket.events" not in str(r) for r in signals.task_prerun.receivers
    )
    app.conf.worker_send_task_events = True
    w._prepare()
    try:
        assert worker_events._dispatcher is not None
        assert any("celery_docket.events.worker" in str(r) for r in signals.task_prerun.receivers)
    finally:
        worker_events.uninstall()


def test_our_receiver_and_state_on_memory() -> None:
    app = Celery("mem", broker=f"memory://{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.worker_send_task_events = True

    @app.task(name="mem.ok")
    def ok(x: int) -> int:
        return x + 1

    @app.task(name="mem.bad")
    def bad() -> None:
        raise ValueError("x")

    state = app.events.State()
    recv = app.events.Receiver(None, handlers={"*": state.event})
    recv._subscribe()
    seen: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: seen.extend(recv.itercapture()), daemon=True)
    thread.start()
    w = WorkController(app, pool="threads", setup_logging=False, hostname="mem@h")
    try:
        w.start_in_thread()
        r1, r2 = ok.delay(1), bad.delay()
        wait_until(lambda: r1.ready() and r2.ready())
        wait_until(lambda: state.tasks.get(r2.id) and state.tasks[r2.id].state == "FAILURE")
        wait_until(lambda: state.tasks.get(r1.id) and state.tasks[r1.id].state == "SUCCESS")
    finally:
        w.stop()
        recv.stop()
        thread.join(5)
    assert state.tasks[r1.id].result == "2" and state.tasks[r1.id].name == "mem.ok"
    assert state.tasks[r2.id].exception == "ValueError('x')"
    assert [t.name for _, t in state.tasks_by_type("mem.ok")] == ["mem.ok"]
    assert "mem@h" in state.workers
    assert {e["type"] for e in seen} >= {"task-received", "task-started", "task-failed"}


@pytest.mark.redis
def test_our_receiver_hears_real_celery_batched_events(events_redis: str) -> None:
    """Real Celery's worker batches task events into ``task.multi`` messages."""
    app = Celery("r", broker=events_redis, set_as_current=False)
    state = State()
    recv = app.events.Receiver(None, handlers={"*": state.event})
    recv._subscribe()
    thread = threading.Thread(target=lambda: recv.capture(), daemon=True)
    thread.start()
    capp = celery.Celery("sender", broker=events_redis, set_as_current=False)
    try:
        with capp.connection_for_write() as conn:
            d = capp.events.Dispatcher(conn, hostname="real@h", buffer_group=["task"])
            d.send("task-received", uuid="m1", name="x.y", args="()", kwargs="{}")
            d.send("task-started", uuid="m1")
            d.send("task-succeeded", uuid="m1", result="None", runtime=0.1)
            d.flush()
            d.close()
        wait_until(lambda: state.tasks.get("m1") and state.tasks["m1"].state == "SUCCESS")
    finally:
        recv.stop()
        thread.join(5)
    assert state.tasks["m1"].worker.hostname == "real@h" and state.tasks["m1"].name == "x.y"


def test_state_keeps_the_later_state_of_reordered_events() -> None:
    state = State()
    now = time.time()
    state.event(
        {"type": "task-received", "uuid": "a", "name": "n", "timestamp": now, "hostname": "w"}
    )
    state.event({"type": "task-succeeded", "uuid": "a", "result": "1", "timestamp": now + 1})
    state.event({"type": "task-sent", "uuid": "a", "queue": "q", "timestamp": now + 2})
    state.event({"type": "task-started", "uuid": "a", "timestamp": now + 0.5})
    task = state.tasks["a"]
    assert task.state == "SUCCESS" and task.queue == "q" and task.started == now + 0.5
    # a retry goes back to RETRY and on to the next attempt
    state.event({"type": "task-retried", "uuid": "b", "timestamp": now})
    state.event({"type": "task-received", "uuid": "b", "timestamp": now + 1})
    assert state.tasks["b"].state == "RECEIVED"
    state.event(
        {"type": "worker-heartbeat", "hostname": "w", "freq": 2.0, "timestamp": time.time()}
    )
    assert state.workers["w"].alive and state.alive_workers() == [state.workers["w"]]
    state.event({"type": "worker-offline", "hostname": "w", "timestamp": time.time()})
    assert not state.workers["w"].alive


@pytest.mark.redis
def test_real_celery_inspect_reaches_our_worker(events_redis: str) -> None:
    """Celery's pidbox broadcast (what Flower's worker list uses) is answered."""
    tag = uuid.uuid4().hex[:6]
    app = Celery(f"pb{tag}", broker=events_redis, set_as_current=False)
    app.conf.docket_key_prefix = f"pb{tag}"
    app.conf.worker_send_task_events = True

    @app.task(name="pb.ok")
    def ok() -> None:
        return None

    capp = celery.Celery("client", broker=events_redis, set_as_current=False)
    w = WorkController(app, pool="threads", setup_logging=False, hostname=f"pb{tag}@h")
    try:
        w.start_in_thread()
        node = f"pb{tag}@h"
        inspect = capp.control.inspect(timeout=1.0, destination=[node])
        assert wait_until(lambda: inspect.ping(), what="ping") == {node: {"ok": "pong"}}
        stats = inspect.stats()[node]
        assert stats["pid"] and "pool" in stats
        assert "pb.ok" in inspect.registered()[node]
        assert [q["name"] for q in inspect.active_queues()[node]] == ["celery"]
        assert inspect.active()[node] == []
        # a revoke from a real Celery client (Flower's button, a producer still on Celery)
        later = ok.apply_async(countdown=1.5)
        capp.control.revoke(later.id)
        wait_until(lambda: later.state == "REVOKED", what="revoked by Celery's broadcast")
        assert later.id in (app.control.inspect().revoked() or {})[node]
    finally:
        w.stop()


@pytest.mark.redis
def test_pidbox_node_answers_again_after_a_redis_restart() -> None:
    server = RedisServer().start()
    try:
        app = Celery("pbr", broker=server.url, set_as_current=False)
        app.conf.worker_send_task_events = True
        w = WorkController(app, pool="threads", setup_logging=False, hostname="pbr@h")
        capp = celery.Celery("client", broker=server.url, set_as_current=False)
        try:
            w.start_in_thread()
            inspect = capp.control.inspect(timeout=0.5, destination=["pbr@h"])
            assert wait_until(lambda: inspect.ping(), what="ping") == {"pbr@h": {"ok": "pong"}}
            server.kill()
            time.sleep(1.0)
            server.start()  # the same port, an empty server
            fresh = celery.Celery("client2", broker=server.url, set_as_current=False)
            again = fresh.control.inspect(timeout=0.5, destination=["pbr@h"])

            def ping() -> Any:
                try:
                    return again.ping()
                except (redis.ConnectionError, OSError):  # the client's own reconnect
                    return None

            assert wait_until(ping, timeout=30, what="ping after the restart")
        finally:
            w.stop()
    finally:
        server.stop()
