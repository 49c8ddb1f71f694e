"""Facade behaviour beyond what real Celery can be compared on (ours on purpose)."""

from __future__ import annotations

import time
import uuid

import pytest

from celery_docket import Celery, shared_task
from celery_docket.exceptions import NotRegistered
from celery_docket.worker import WorkController


@pytest.fixture
def app(broker_url: str, prefix: str) -> Celery:
    a = Celery(f"f{uuid.uuid4().hex[:6]}", broker=broker_url, set_as_current=False)
    a.conf.docket_key_prefix = prefix
    yield a
    a.close()


def _worker(app: Celery, **kw) -> WorkController:
    return WorkController(app, pool="threads", concurrency=2, setup_logging=False, **kw)


def test_explicit_task_id_is_an_idempotency_key(app: Celery) -> None:
    runs = []

    @app.task(name="f.once")
    def once(x):
        runs.append(x)
        return x

    first = once.apply_async((1,), task_id="order-42", countdown=0.3)
    second = once.apply_async((2,), task_id="order-42", countdown=0.3)
    assert first.id == second.id == "order-42"
    w = _worker(app).start_in_thread()
    try:
        assert first.get(timeout=10) == 1
        time.sleep(0.5)
    finally:
        w.stop()
    assert runs == [1]


@pytest.mark.redis
def test_separate_result_backend(redis_server_url: str, prefix: str) -> None:
    backend = redis_server_url.rsplit("/", 1)[0] + "/4"
    app = Celery("sep", broker=f"memory://{prefix}", backend=backend, set_as_current=False)

    @app.task(name="f.add")
    def add(x, y):
        return x + y

    w = _worker(app).start_in_thread()
    try:
        r = add.delay(2, 5)
        assert r.get(timeout=10) == 7
    finally:
        w.stop()
    import redis

    stored = redis.Redis.from_url(backend).get(f"celery-task-meta-{r.id}")
    assert stored is not None and b'"SUCCESS"' in stored


def test_beat_entries_tick_once_per_interval_across_two_workers(app: Celery) -> None:
    ticks: list[float] = []

    @app.task(name="f.tick")
    def tick():
        ticks.append(time.time())

    app.conf.beat_schedule = {"every-300ms": {"task": "f.tick", "schedule": 0.3}}
    w1 = _worker(app, hostname="one@%h").start_in_thread()
    w2 = _worker(app, hostname="two@%h").start_in_thread()
    try:
        time.sleep(2.0)
    finally:
        w1.stop()
        w2.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert 4 <= len(ticks) <= 8, ticks
    assert min(gaps) >= 0.25, gaps


def test_removed_beat_entry_is_not_rescheduled(app: Celery) -> None:
    ticks: list[float] = []

    @app.task(name="f.tick2")
    def tick2():
        ticks.append(time.time())

    app.conf.beat_schedule = {"gone": {"task": "f.tick2", "schedule": 0.2}}
    w = _worker(app).start_in_thread()
    try:
        deadline = time.time() + 5
        while not ticks and time.time() < deadline:
            time.sleep(0.02)
        app.conf.beat_schedule = {}
        time.sleep(0.8)
        count = len(ticks)
        time.sleep(0.6)
    finally:
        w.stop()
    assert count >= 1 and len(ticks) == count
    assert app.docket.execution_record("beat:gone", "celery") == {}


def test_shared_task_binds_to_the_current_app(app: Celery, monkeypatch) -> None:
    from celery_docket import _state

    # shared tasks join every app finalized later (as in Celery): keep that to this test
    monkeypatch.setattr(_state, "_on_app_finalizers", list(_state._on_app_finalizers))

    # a name of its own: an app of an earlier test, still current somewhere, gets it too
    name = f"f.shared.{uuid.uuid4().hex[:6]}"

    @shared_task(name=name)
    def shared(x):
        return x * 3

    app.set_current()
    app.finalize()
    assert name in app.tasks
    w = _worker(app).start_in_thread()
    try:
        assert shared.delay(3).get(timeout=10) == 9
    finally:
        w.stop()


def test_unregistered_task_fails_and_is_dead_lettered(app: Celery) -> None:
    @app.task(name="f.known")
    def known():
        return "ok"

    w = _worker(app).start_in_thread()
    try:
        r = app.send_task("f.unknown", (1,))
        with pytest.raises(NotRegistered):
            r.get(timeout=10)
        assert known.delay().get(timeout=10) == "ok"
    finally:
        w.stop()
    dead = app.docket.redis.xrange(app.docket.keys("celery").dead)
    assert [f[b"r"] for _m, f in dead] == [b"unregistered task 'f.unknown'"]


def test_pickle_refused_unless_accepted(app: Celery) -> None:
    app.conf.task_serializer = "pickle"

    @app.task(name="f.p")
    def p(x):
        return x

    w = _worker(app).start_in_thread()
    try:
        r = p.delay(1)
        with pytest.raises(Exception) as info:
            r.get(timeout=10)
    finally:
        w.stop()
    assert "untrusted content" in str(info.value) or "ContentDisallowed" in repr(info.value)
    dead = app.docket.redis.xrange(app.docket.keys("celery").dead)
    assert len(dead) == 1 and b"cannot decode body" in dead[0][1][b"r"]


def test_periodic_task_added_on_after_configure_ticks(app: Celery) -> None:
    seen: list[str] = []

    @app.task(name="f.t3")
    def t3(x):
        seen.append(x)

    @app.on_after_configure.connect
    def setup(sender, **kwargs):
        sender.add_periodic_task(0.2, t3.s("hi"), name="fast")

    w = _worker(app).start_in_thread()
    try:
        time.sleep(1.2)
    finally:
        w.stop()
    assert len(seen) >= 3 and set(seen) == {"hi"}


def test_crontab_entry_is_parked_for_its_next_fire_time(app: Celery) -> None:
    from datetime import datetime, timezone

    from celery_docket.schedules import crontab
    from celery_docket.worker.beat import BeatPlanner

    app.conf.timezone = "Europe/Berlin"
    app.conf.beat_schedule = {"c": {"task": "f.x", "schedule": crontab(minute="*/5", hour=10)}}
    (spec,) = BeatPlanner(app).perpetuals(["celery"])
    assert spec.key == "beat:c"
    now = datetime(2026, 1, 15, 9, 2, 30, tzinfo=timezone.utc)  # 10:02:30 in Berlin (CET)
    due = spec.first_when_ms(int(now.timestamp() * 1000))
    assert datetime.fromtimestamp(due / 1000, timezone.utc) == datetime(
        2026, 1, 15, 9, 5, tzinfo=timezone.utc
    )


def test_update_state_progress_and_result_extended(app: Celery) -> None:
    import threading

    app.conf.result_extended = True
    gate = threading.Event()

    @app.task(bind=True, name="f.progress")
    def progress(self, n):
        self.update_state(state="PROGRESS", meta={"done": 1, "of": n})
        gate.wait(5)
        return n

    w = _worker(app).start_in_thread()
    try:
        r = progress.delay(3)
        deadline = time.time() + 5
        while r.state != "PROGRESS" and time.time() < deadline:
            time.sleep(0.02)
        assert r.state == "PROGRESS" and r.info == {"done": 1, "of": 3}
        gate.set()
        assert r.get(timeout=10) == 3
        again = app.AsyncResult(r.id)
        assert again.name == "f.progress" and again.args == [3] and again.kwargs == {}
        assert again.queue == "celery" and again.worker.startswith("celery@")
        again.forget()
        assert app.AsyncResult(r.id).state == "PENDING"
    finally:
        gate.set()
        w.stop()


def test_result_expires_sets_a_ttl(app: Celery) -> None:
    app.conf.result_expires = 60

    @app.task(name="f.ttl")
    def ttl():
        return 1

    w = _worker(app).start_in_thread()
    try:
        r = ttl.delay()
        r.get(timeout=10)
    finally:
        w.stop()
    pttl = app.results.backend.client.pttl(f"celery-task-meta-{r.id}")
    assert 50_000 < pttl <= 60_000


def test_expired_message_is_revoked_not_run(app: Celery) -> None:
    from celery_docket.exceptions import TaskRevokedError

    runs = []

    @app.task(name="f.exp")
    def exp():
        runs.append(1)

    r = exp.apply_async(countdown=0.5, expires=0.1)
    w = _worker(app).start_in_thread()
    try:
        with pytest.raises(TaskRevokedError):
            r.get(timeout=10)
    finally:
        w.stop()
    assert runs == [] and r.state == "REVOKED"


def test_track_started_and_soft_time_limit_in_threads_pool(app: Celery) -> None:
    from celery_docket.exceptions import SoftTimeLimitExceeded

    app.conf.task_track_started = True
    states_seen = []

    @app.task(bind=True, name="f.soft", soft_time_limit=0.3)
    def soft(self):
        states_seen.append(app.AsyncResult(self.request.id).state)
        try:
            for _ in range(100):  # Python code runs between sleeps, where the limit lands
                time.sleep(0.02)
        except SoftTimeLimitExceeded:
            return "cleaned up"
        return "ran to the end"

    w = _worker(app).start_in_thread()
    try:
        assert soft.delay().get(timeout=10) == "cleaned up"
    finally:
        w.stop()
    assert states_seen == ["STARTED"]


def test_unsupported_setting_warns_once_by_name(broker_url: str, prefix: str) -> None:
    import warnings

    from celery_docket import config

    config._WARNED.discard("worker_enable_remote_control")
    a = Celery("warn", broker=broker_url, set_as_current=False)
    a.conf.worker_enable_remote_control = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a.docket
        b = Celery("warn2", broker=broker_url, set_as_current=False)
        b.conf.worker_enable_remote_control = False
        b.docket
    named = [w for w in caught if "worker_enable_remote_control" in str(w.message)]
    assert len(named) == 1


def test_publishing_errors_are_typed_and_nothing_half_written(broker_url: str, prefix: str) -> None:
    from kombu.exceptions import OperationalError

    from celery_docket.exceptions import BrokerUnavailable, PayloadTooLarge

    down = Celery("down", broker="redis://127.0.0.1:1/0", set_as_current=False)

    @down.task(name="f.any")
    def any_task(x):
        return x

    with pytest.raises(BrokerUnavailable) as info:
        any_task.delay(1)
    assert isinstance(info.value, OperationalError)
    assert "f.any" in str(info.value)

    small = Celery("small", broker=broker_url, set_as_current=False)
    small.conf.docket_key_prefix = prefix
    small.conf.docket_max_payload_bytes = 2048

    @small.task(name="f.big")
    def big(blob):
        return len(blob)

    with pytest.raises(PayloadTooLarge) as too_big:
        big.delay("x" * 5000)
    assert too_big.value.limit == 2048 and too_big.value.size > 5000
    assert small.docket.redis.xlen(small.docket.keys("celery").stream) == 0


def test_worker_settings_follow_configuration(app: Celery) -> None:
    from kombu import Queue

    from celery_docket.engine import Delivery
    from celery_docket.worker.handler import CeleryHandler

    app.conf.task_queues = [Queue("alpha"), Queue("beta")]
    controller = WorkController(app, pool="solo", setup_logging=False)
    assert controller.queues == ["alpha", "beta"]  # no -Q: every configured queue

    @app.task(name="f.plain")
    def plain():
        return 1

    @app.task(name="f.late", acks_late=True)
    def late():
        return 1

    d = Delivery("alpha", "1-0", "x", "f.plain", b"", 1, False, "", False)
    assert CeleryHandler(app, "n").acks_early(d) is False  # late acks by default
    app.conf.task_acks_late = False  # set explicitly: at-most-once, as asked
    assert CeleryHandler(app, "n").acks_early(d) is True
    d.function = "f.late"
    assert CeleryHandler(app, "n").acks_early(d) is False  # the task's own choice wins

    app.conf.broker_transport_options = {"visibility_timeout": 120}
    assert controller._make_worker("n@h", "solo", 1).settings.lease_seconds == 120
    app.conf.docket_lease_seconds = 7
    assert controller._make_worker("n@h", "solo", 1).settings.lease_seconds == 7


def test_scheduler_only_process_schedules_but_runs_nothing(app: Celery) -> None:
    ran: list[str] = []

    @app.task(name="f.job")
    def job(tag):
        ran.append(tag)

    app.conf.beat_schedule = {"often": {"task": "f.job", "schedule": 0.2, "args": ("tick",)}}
    scheduler = WorkController(app, pool="solo", queues=[], setup_logging=False)
    assert scheduler.scheduler_only and scheduler.queues == ["celery"]
    scheduler.start_in_thread()
    try:
        job.delay("plain")
        time.sleep(0.8)
        assert ran == []  # nothing consumed
        assert app.docket.execution_record("beat:often", "celery")  # the entry is kept alive
    finally:
        scheduler.stop()
    w = _worker(app).start_in_thread()
    try:
        deadline = time.time() + 5
        while ("plain" not in ran or "tick" not in ran) and time.time() < deadline:
            time.sleep(0.02)
    finally:
        w.stop()
    assert "plain" in ran and "tick" in ran


def test_worker_state_counts_a_success_once_its_result_is_committed(app: Celery) -> None:
    """The facade's ``after_commit`` hook (worker/hooks.py) feeds ``celery.worker.state``:
    successes only, each once, and never before ``get()`` could read the result."""
    from celery_docket.worker import state

    @app.task(name="f.counted")
    def counted(x):
        if x < 0:
            raise ValueError(x)
        return x

    before = state.total_count.get("f.counted", 0)
    w = _worker(app).start_in_thread()
    try:
        ok = counted.delay(1)
        bad = counted.delay(-1)
        assert ok.get(timeout=10) == 1
        with pytest.raises(ValueError):
            bad.get(timeout=10)
        deadline = time.monotonic() + 5
        while ok.id not in state.successful_requests and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        w.stop()
    assert ok.id in state.successful_requests
    assert bad.id not in state.successful_requests
    assert state.total_count.get("f.counted", 0) - before == 1
