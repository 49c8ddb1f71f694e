"""Remote control and inspection from Redis: revoke (and terminate), inspect, purge, status,
info and the dead-letter commands.

In-process workers (threads/solo) run on memory:// and on a real redis-server; the prefork
pool and the command line run in subprocesses against a real redis-server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from celery_docket import Celery, signals, states
from celery_docket.cli.main import celery as celery_group
from celery_docket.control import (
    dead_entries,
    purge_queues,
    queue_overview,
    replay_dead,
)
from celery_docket.engine import Call
from celery_docket.exceptions import TaskRevokedError
from celery_docket.protocol import build_task_message
from celery_docket.worker import WorkController
from celery_docket.worker.revoke import is_revoked

REPO = Path(__file__).resolve().parent.parent
TASK_INFO_KEYS = {
    "id",
    "name",
    "args",
    "kwargs",
    "type",
    "hostname",
    "time_start",
    "acknowledged",
    "delivery_info",
    "worker_pid",
}


# -- helpers ---------------------------------------------------------------------------------


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}")
        time.sleep(0.05)


@pytest.fixture
def app(broker_url: str, prefix: str) -> Iterator[Celery]:
    a = Celery(f"ctl{uuid.uuid4().hex[:6]}", broker=broker_url, set_as_current=False)
    a.conf.docket_key_prefix = prefix
    yield a
    a.close()


def start(app: Celery, **kw: Any) -> WorkController:
    kw.setdefault("pool", "threads")
    kw.setdefault("concurrency", 2)
    return WorkController(app, setup_logging=False, **kw).start_in_thread()


@pytest.fixture
def revoked_signals() -> Iterator[list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []

    def receiver(sender: Any = None, **kwargs: Any) -> None:
        got.append({"sender": sender, **kwargs})

    signals.task_revoked.connect(receiver, weak=False)
    yield got
    signals.task_revoked.disconnect(receiver)


def _bulk(app: Celery, name: str, n: int, queue: str, countdown: float | None = None) -> None:
    when = time.time() + countdown if countdown else None
    calls = []
    for i in range(n):
        message = build_task_message(name, [i, i], {}, task_id=str(uuid.uuid4()), queue=queue)
        calls.append(Call(name, message.encode(), queue=queue, when=when, execution_id=message.id))
    app.docket.enqueue_many(calls)


# -- revoke ----------------------------------------------------------------------------------


def test_revoked_tasks_never_run(app: Celery, revoked_signals: list[dict[str, Any]]) -> None:
    runs: list[int] = []

    @app.task(name="ctl.record")
    def record(x):
        runs.append(x)
        return x

    plain = record.delay(1)  # ready in the stream
    later = record.apply_async((2,), countdown=0.5)  # parked
    keyed = record.apply_async((3,), task_id=f"order-{uuid.uuid4().hex[:6]}")  # keyed, queued
    other = record.apply_async((4,), countdown=0.5)
    t0 = time.perf_counter()
    app.control.revoke([plain.id, later.id, keyed.id])
    other.revoke()  # AsyncResult.revoke goes through app.control.revoke
    print(f"\nrevoke of 4 tasks took {1000 * (time.perf_counter() - t0):.1f} ms")
    # the states are REVOKED at once (Celery 5.7 marks waiting tasks right away too)
    for r in (plain, later, keyed, other):
        assert r.state == states.REVOKED
        assert isinstance(r.result, TaskRevokedError)
    w = start(app)
    try:
        control = record.delay(5)
        assert control.get(timeout=10) == 5
        wait_until(lambda: len(revoked_signals) >= 4, what="task_revoked for each revoked task")
        time.sleep(0.8)  # past the countdowns: nothing revoked may run late
    finally:
        w.stop()
    assert runs == [5]
    by_id = {s["request"].id: s for s in revoked_signals}
    assert set(by_id) == {plain.id, later.id, keyed.id, other.id}
    for s in by_id.values():
        assert s["sender"] is app.tasks["ctl.record"]
        assert s["terminated"] is False and s["signum"] is None and s["expired"] is False
        assert s["request"].args in ([1], [2], [3], [4])
    with pytest.raises(TaskRevokedError):
        plain.get(timeout=1)
    # parked and keyed executions were taken out of the engine, not left to expire
    for q in app.docket.queues():
        assert app.docket.redis.zcard(app.docket.keys(q).due) == 0


def test_revoke_reaches_a_running_worker_and_survives_restarts(app: Celery) -> None:
    runs: list[int] = []

    @app.task(name="ctl.later")
    def later(x):
        runs.append(x)
        return x

    w = start(app)
    try:
        r = later.apply_async((1,), countdown=0.6)
        app.control.revoke(r.id)
        wait_until(lambda: is_revoked(r.id), what="the worker's copy to learn the revocation")
        # a task sent after the revoke, under the same id, is discarded by the worker too
        again = later.apply_async((2,), task_id=r.id)
        time.sleep(1.0)
        assert later.delay(3).get(timeout=10) == 3
    finally:
        w.stop()
    assert runs == [3]
    assert again.state == states.REVOKED

    # revocations live in Redis: a worker started later still discards the task
    queued = later.apply_async((4,), task_id=f"re-{uuid.uuid4().hex[:6]}")
    app.control.revoke(queued.id)
    later.apply_async((5,), task_id=queued.id, replace=True)  # the id comes back
    w = start(app, pool="solo")
    try:
        assert later.delay(6).get(timeout=10) == 6
    finally:
        w.stop()
    assert runs == [3, 6]


def test_revocations_expire(app: Celery) -> None:
    app.conf.docket_revoke_expires = 1.5
    runs: list[int] = []

    @app.task(name="ctl.exp")
    def exp(x):
        runs.append(x)
        return x

    task_id = f"exp-{uuid.uuid4().hex[:6]}"
    w = start(app)
    try:
        revoked_at = time.monotonic()
        app.control.revoke(task_id)
        assert app.control.inspect().revoked() == {w.hostname: [task_id]}
        assert time.monotonic() - revoked_at < 1.5, "too slow to see the revoke before it expired"
        time.sleep(1.7)
        assert app.control.inspect().revoked() == {w.hostname: []}
        app.AsyncResult(task_id).forget()  # the REVOKED state written by the revoke
        assert exp.apply_async((1,), task_id=task_id).get(timeout=10) == 1
    finally:
        w.stop()
    assert runs == [1]


def test_terminate_on_threads_is_cooperative(
    app: Celery, revoked_signals: list[dict[str, Any]]
) -> None:
    """A thread cannot be killed: the task runs to its end, but its retry never runs."""
    started = threading.Event()
    release = threading.Event()
    runs: list[int] = []

    @app.task(name="ctl.retrying", bind=True, max_retries=5)
    def retrying(self):
        runs.append(self.request.retries)
        started.set()
        release.wait(10)
        raise self.retry(countdown=0.1)

    w = start(app)
    try:
        r = retrying.delay()
        assert started.wait(10)
        wait_until(lambda: (app.control.inspect().active() or {}).get(w.hostname))
        replies = app.control.revoke(r.id, terminate=True, signal="SIGKILL", reply=True)
        assert replies == [{w.hostname: {"ok": f"terminate: {r.id}"}}]
        wait_until(lambda: is_revoked(r.id))
        release.set()
        wait_until(lambda: r.state == states.REVOKED, what="REVOKED")
        time.sleep(0.5)
    finally:
        release.set()
        w.stop()
    assert runs == [0]
    assert isinstance(r.result, TaskRevokedError)
    assert [s["request"].id for s in revoked_signals] == [r.id]


# -- inspect ---------------------------------------------------------------------------------


def test_inspect_two_workers(app: Celery) -> None:
    app.conf.task_routes = {"ctl.slow_b": {"queue": "qb"}}
    gate = threading.Event()

    @app.task(name="ctl.slow_a")
    def slow_a(x):
        gate.wait(10)
        return x

    @app.task(name="ctl.slow_b", rate_limit="10/m")
    def slow_b(x):
        gate.wait(10)
        return x

    assert app.control.inspect().ping() is None  # nobody alive: None, as Celery
    wb = start(app, hostname="b@%h", queues=["qb"], pool="solo")
    r1 = slow_a.delay(1)
    r2 = slow_a.delay(2)  # read in the same batch as r1 by the solo worker: reserved
    r3 = slow_b.delay(3)
    r4 = slow_a.apply_async((4,), countdown=60)
    wa = start(app, hostname="a@%h", queues=["celery"], pool="solo")
    a, b = wa.hostname, wb.hostname
    try:
        insp = app.control.inspect()
        t0 = time.perf_counter()
        assert insp.ping() == {a: {"ok": "pong"}, b: {"ok": "pong"}}
        print(f"\ninspect ping with two workers: {1000 * (time.perf_counter() - t0):.1f} ms")
        assert app.control.ping() == [{a: {"ok": "pong"}}, {b: {"ok": "pong"}}]
        assert app.control.inspect(destination=[b]).ping() == {b: {"ok": "pong"}}
        assert app.control.inspect(destination=["nobody@x"]).ping() is None
        registered = insp.registered()
        # as Celery: rate_limit (with exchange and routing_key) is shown by default
        assert registered[a] == registered[b] == ["ctl.slow_a", "ctl.slow_b [rate_limit=10/m]"]
        assert insp.registered("max_retries")[a] == [
            "ctl.slow_a [max_retries=3]",
            "ctl.slow_b [max_retries=3]",
        ]
        queues = insp.active_queues()
        assert [q["name"] for q in queues[a]] == ["celery"]
        assert [q["name"] for q in queues[b]] == ["qb"]
        assert queues[b][0]["exchange"]["type"] == "direct"

        def active_ids() -> dict[str, list[str]]:
            got = insp.active() or {}
            return {n: [t["id"] for t in ts] for n, ts in got.items()}

        wait_until(lambda: active_ids() == {a: [r1.id], b: [r3.id]}, what="both active")
        active = insp.active()
        info = active[a][0]
        assert set(info) == TASK_INFO_KEYS
        assert info["name"] == "ctl.slow_a" and info["args"] == [1] and info["kwargs"] == {}
        assert info["hostname"] == a and info["worker_pid"] == os.getpid()
        assert info["delivery_info"]["routing_key"] == "celery"
        assert isinstance(info["time_start"], float)
        reserved = wait_until(lambda: insp.reserved()[a] and insp.reserved(), what="reserved")
        assert [t["id"] for t in reserved[a]] == [r2.id]
        assert reserved[a][0]["time_start"] is None and reserved[b] == []
        scheduled = insp.scheduled()
        assert scheduled[b] == []
        (entry,) = scheduled[a]
        assert entry["request"]["id"] == r4.id and entry["request"]["args"] == [4]
        assert entry["eta"].startswith(time.strftime("%Y", time.gmtime()))
        query = insp.query_task(r1.id, r2.id, r3.id, r4.id)
        assert query[a][r1.id][0] == "active" and query[a][r2.id][0] == "reserved"
        assert query[a][r4.id][0] == "scheduled" and query[b][r3.id][0] == "active"
        stats = insp.stats()
        assert stats[a]["pool"]["max-concurrency"] == 1
        assert stats[a]["pool"]["processes"] == stats[b]["pool"]["processes"] == [os.getpid()]
        assert {
            "broker",
            "clock",
            "pid",
            "pool",
            "prefetch_count",
            "rusage",
            "total",
            "uptime",
        } <= set(stats[a])
        app.control.revoke(r4.id)
        assert insp.revoked() == {a: [r4.id], b: [r4.id]}
        gate.set()
        assert [r.get(timeout=10) for r in (r1, r2, r3)] == [1, 2, 3]
        wait_until(lambda: (insp.stats() or {}).get(a, {}).get("total") == {"ctl.slow_a": 2})
        assert insp.report()[a]["ok"].startswith("\nsoftware -> celery-docket:")
        with pytest.raises(NotImplementedError, match="conf"):
            insp.conf()
    finally:
        gate.set()
        wa.stop()
        wb.stop()
    # a worker that stops cleanly is gone at once
    assert app.control.inspect().ping() is None


def test_control_commands_on_in_process_workers(app: Celery) -> None:
    @app.task(name="ctl.where")
    def where():
        return "ran"

    w = start(app, hostname="c@%h")
    node = w.hostname
    try:
        assert app.control.time_limit("ctl.where", soft=3, hard=5, reply=True) == [
            {node: {"ok": "time limits set successfully"}}
        ]
        wait_until(lambda: app.tasks["ctl.where"].time_limit == 5.0)
        assert app.tasks["ctl.where"].soft_time_limit == 3.0
        assert app.control.time_limit("ctl.nope", 1, reply=True) == [
            {node: {"error": "unknown task"}}
        ]
        # a new queue, then not any more
        r = where.apply_async(queue="extra")
        app.control.add_consumer("extra", reply=True)
        assert r.get(timeout=10) == "ran"
        wait_until(lambda: "extra" in app.control.inspect().active_queues()[node][-1]["name"])
        app.control.cancel_consumer("extra")
        wait_until(
            lambda: [q["name"] for q in app.control.inspect().active_queues()[node]] == ["celery"]
        )
        r2 = where.apply_async(queue="extra")
        time.sleep(0.5)
        assert r2.state == states.PENDING
        assert app.control.pool_grow(2, reply=True) == [
            {node: {"error": "pool_grow is not supported by the threads pool"}}
        ]
        assert app.control.broadcast("ping", reply=True) == [{node: {"ok": "pong"}}]
        for command in ("autoscale", "enable_events", "pool_restart"):
            with pytest.raises(NotImplementedError, match=command):
                app.control.broadcast(command, arguments={})
        # rate_limit is kept in Redis for every worker; replies in Celery's shapes
        assert app.control.rate_limit("ctl.where", "1/s", reply=True) == [
            {node: {"ok": "new rate limit set successfully"}}
        ]
        assert app.control.rate_limit("ctl.nosuch", "1/s", reply=True) == [
            {node: {"error": "unknown task"}}
        ]
        bad = app.control.rate_limit("ctl.where", "1/fortnight", reply=True)
        assert "Invalid rate limit string" in bad[0][node]["error"]
        assert app.control.rate_limit("ctl.where", "default") is None
        with pytest.raises(NotImplementedError, match="nosuch"):
            app.control.broadcast("nosuch")
        # shutdown through the control channel stops the worker
        app.control.shutdown()
        wait_until(lambda: w._worker is not None and w._worker.stopped, what="shutdown")
        assert app.control.inspect().ping() is None
    finally:
        w.stop()


@pytest.mark.redis
def test_dead_worker_disappears_after_its_heartbeat_ttl(
    redis_server_url: str, prefix: str, tmp_path: Path
) -> None:
    proc = _spawn_worker(
        tmp_path, redis_server_url, prefix, "-P", "threads", "-n", "dies@%h", lease=1
    )
    app = _client(redis_server_url, prefix)
    try:
        node = wait_until(lambda: app.control.inspect().ping(), timeout=30, what="worker up")
        (name,) = node
        assert name.startswith("dies@")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        assert app.control.inspect().ping() == {name: {"ok": "pong"}}  # its key has not expired yet
        wait_until(
            lambda: app.control.inspect().ping() is None, timeout=10, what="heartbeat expiry"
        )
        gone = time.monotonic() - killed
        print(f"\nkilled worker left inspect after {gone:.2f}s (heartbeat TTL 3s)")
        assert gone < 5.0
    finally:
        _stop(proc)
        app.close()


# -- purge, info, dead letters ---------------------------------------------------------------


def test_purge_one_queue_leaves_the_others(app: Celery) -> None:
    app.conf.task_queues = ["celery", "keep"]

    @app.task(name="ctl.p")
    def p(x):
        return x

    for i in range(3):
        p.apply_async((i,), queue="gone")
        p.apply_async((i,), queue="keep")
    p.apply_async((9,), queue="gone", countdown=60)
    p.apply_async((9,), queue="gone", task_id=f"k-{uuid.uuid4().hex[:6]}")
    p.apply_async((9,), queue="keep", countdown=60)
    before = queue_overview(app)["queues"]
    assert (before["gone"]["ready"], before["gone"]["scheduled"]) == (4, 1)
    assert purge_queues(app, ["gone"]) == 5
    after = queue_overview(app)["queues"]
    assert (after["gone"]["ready"], after["gone"]["scheduled"]) == (0, 0)
    assert (after["keep"]["ready"], after["keep"]["scheduled"]) == (3, 1)
    # app.control.purge() empties only the app's queues (task_queues here)
    p.apply_async((1,), queue="gone")
    assert app.control.purge() == 4
    after = queue_overview(app)["queues"]
    assert after["keep"]["ready"] == 0 and after["gone"]["ready"] == 1


def test_purge_keeps_delivered_tasks_and_beat_entries(app: Celery) -> None:
    from datetime import timedelta

    gate = threading.Event()

    @app.task(name="ctl.hold")
    def hold():
        gate.wait(10)
        return "held"

    @app.task(name="ctl.tick")
    def tick():
        return "tick"

    app.conf.beat_schedule = {"tick": {"task": "ctl.tick", "schedule": timedelta(hours=1)}}
    w = start(app, concurrency=1, prefetch_multiplier=1)
    try:
        held = hold.delay()
        wait_until(lambda: (app.control.inspect().active() or {}).get(w.hostname))
        for _ in range(3):
            hold.delay()
        assert app.control.purge() == 3
        beat = app.docket.keys("celery").due
        assert app.docket.redis.zcard(beat) == 1  # the beat entry's next tick stays
        gate.set()
        assert held.get(timeout=10) == "held"
    finally:
        gate.set()
        w.stop()


def test_dead_letter_replay_runs_the_task(app: Celery) -> None:
    w = start(app)
    try:
        r = app.send_task("ctl.late_comer", (20, 22))
        entries = wait_until(lambda: dead_entries(app), what="the dead letter")
        (entry,) = entries
        assert entry.task_id == r.id and entry.function == "ctl.late_comer"
        assert "unregistered" in entry.reason
        assert entry.as_dict(app)["args"] == [20, 22]
        assert queue_overview(app)["queues"]["celery"]["dead"] == 1

        @app.task(name="ctl.late_comer")
        def late_comer(x, y):
            return x + y

        replayed, skipped = replay_dead(app, dead_entries(app, task_id=r.id))
        assert [d.task_id for d in replayed] == [r.id] and skipped == []
        assert app.AsyncResult(r.id).get(timeout=10) == 42
        assert dead_entries(app) == []
    finally:
        w.stop()


def test_inspect_and_info_answer_fast_with_5000_tasks_queued(app: Celery) -> None:
    @app.task(name="ctl.bulk")
    def bulk(x, y):
        return x + y

    t0 = time.perf_counter()
    _bulk(app, "ctl.bulk", 5000, "waiting")  # nobody consumes it
    _bulk(app, "ctl.bulk", 5000, "later", countdown=3600)  # consumed, parked for an hour
    print(f"\nqueued 10,000 tasks in {time.perf_counter() - t0:.2f}s")
    w = start(app, queues=["later"])
    try:
        insp = app.control.inspect()
        timings = {}
        for command in ("ping", "active", "reserved", "stats", "registered", "revoked"):
            t0 = time.perf_counter()
            assert getattr(insp, command)()
            timings[f"inspect {command}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        scheduled = insp.scheduled()
        timings["inspect scheduled (5,000 parked)"] = time.perf_counter() - t0
        assert len(scheduled[w.hostname]) == 5000
        t0 = time.perf_counter()
        overview = queue_overview(app)
        timings["info"] = time.perf_counter() - t0
        assert overview["queues"]["waiting"]["ready"] == 5000
        assert overview["queues"]["later"]["scheduled"] == 5000
        t0 = time.perf_counter()
        result = invoke(app, ["info", "--json"])
        timings["celery-docket info (in process)"] = time.perf_counter() - t0
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["queues"]["waiting"]["ready"] == 5000
    finally:
        w.stop()
    print("\n" + "\n".join(f"  {k}: {1000 * v:.1f} ms" for k, v in timings.items()))
    slow = {k: v for k, v in timings.items() if v >= 2.0}
    assert not slow, slow


# -- command line ----------------------------------------------------------------------------


def invoke(app: Celery, args: list[str], **kw: Any) -> Any:
    """Run the command line in this process on ``app`` (found with -A as a module attribute)."""
    name = f"ctlapp_{uuid.uuid4().hex[:8]}"
    module = types.ModuleType(name)
    module.app = app  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        return CliRunner().invoke(celery_group, ["-A", f"{name}:app", *args], **kw)
    finally:
        sys.modules.pop(name, None)


def test_cli_commands_in_process(app: Celery) -> None:
    @app.task(name="ctl.cli")
    def cli_task(x):
        return x

    result = invoke(app, ["inspect", "ping"])
    assert result.exit_code == 69, result.output
    assert "No nodes replied" in result.output
    assert invoke(app, ["status"]).exit_code == 69
    w = start(app, hostname="cli@%h")
    node = w.hostname
    try:
        result = invoke(app, ["status"])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [f"->  {node}: OK", "", "1 node online."]
        result = invoke(app, ["inspect", "ping"])
        assert result.stdout.splitlines() == [
            f"->  {node}: OK",
            "        pong",
            "",
            "1 node online.",
        ]
        result = invoke(app, ["inspect", "registered", "--json"])
        assert json.loads(result.stdout) == {node: ["ctl.cli"]}
        result = invoke(app, ["inspect", "active"])
        assert result.stdout.splitlines()[:2] == [f"->  {node}: OK", "    - empty -"]
        result = invoke(app, ["inspect", "nosuch"])
        assert result.exit_code == 2 and "Unknown inspect command" in result.output
        result = invoke(app, ["inspect", "clock"])
        assert result.exit_code == 1 and "not supported" in result.output
        tid = f"cli-{uuid.uuid4().hex[:6]}"
        result = invoke(app, ["control", "revoke", tid])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            f"->  {node}: OK",
            f"        tasks {{'{tid}'}} flagged as revoked",
        ]
        result = invoke(app, ["control", "--json", "time_limit", "ctl.cli", "1", "2"])
        assert json.loads(result.stdout) == [{node: {"ok": "time limits set successfully"}}]
        result = invoke(app, ["control", "--json", "rate_limit", "ctl.cli", "1/s"])
        assert json.loads(result.stdout) == [{node: {"ok": "new rate limit set successfully"}}]
        result = invoke(app, ["inspect", "--list"])
        assert "query_task" in result.output and "clock" in result.output
        # purge asks first, -f does not
        cli_task.apply_async((1,), queue="cliq")
        result = invoke(app, ["purge", "-Q", "cliq"], input="n\n")
        assert result.exit_code == 1 and "Go on?" in result.output
        result = invoke(app, ["purge", "-Q", "cliq", "-f"])
        assert result.stdout.strip() == "Purged 1 message from 1 known task queue."
        result = invoke(app, ["purge", "-Q", "cliq", "-f"])
        assert result.stdout.strip() == "No messages purged from 1 queue."
        # info, dead letters
        r = app.send_task("ctl.unknown", (1,))
        wait_until(lambda: dead_entries(app))
        result = invoke(app, ["info"])
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0].split() == [
            "QUEUE",
            "READY",
            "SCHEDULED",
            "RESERVED",
            "RUNNING",
            "DEAD",
            "WORKERS",
        ]
        assert any(line.split()[:1] == ["celery"] and line.split()[5] == "1" for line in lines)
        assert any(line.startswith(node) for line in lines)
        result = invoke(app, ["dead", "list"])
        assert r.id in result.output and "ctl.unknown" in result.output
        (doc,) = json.loads(invoke(app, ["dead", "list", "--json"]).stdout)
        assert doc["id"] == r.id and doc["args"] == [1]

        @app.task(name="ctl.unknown")
        def unknown(x):
            return x * 10

        result = invoke(app, ["dead", "retry", "--id", r.id])
        assert result.exit_code == 0 and "Replayed 1 task." in result.output
        assert app.AsyncResult(r.id).get(timeout=10) == 10
        result = invoke(app, ["dead", "retry", "--id", "nope"])
        assert result.exit_code == 1 and "No dead-lettered task" in result.output
        app.send_task("ctl.unknown2")
        wait_until(lambda: dead_entries(app))
        result = invoke(app, ["dead", "purge", "-f"])
        assert result.stdout.strip() == "Deleted 1 dead-lettered task."
        assert invoke(app, ["report"]).stdout.startswith("\nsoftware -> celery-docket:")
    finally:
        w.stop()


# -- subprocesses: prefork and the installed command -------------------------------------------

PROJECT = """
import os, time
import redis
from celery_docket import Celery

app = Celery("ctlproj", broker=os.environ["BROKER"])
app.conf.docket_key_prefix = os.environ["PREFIX"]
app.conf.docket_lease_seconds = float(os.environ.get("LEASE", "30"))
_r = redis.Redis.from_url(os.environ["BROKER"])


@app.task(name="ctl.sleep")
def sleep(seconds, mark):
    _r.incr(mark)
    time.sleep(seconds)
    return os.getpid()


@app.task(name="ctl.pid")
def pid():
    return os.getpid()
"""


def _script() -> list[str]:
    script = Path(sys.executable).parent / "celery-docket"
    if script.exists():
        return [str(script)]
    return [
        sys.executable,
        "-c",
        "import sys; from celery_docket.cli.main import main; sys.exit(main())",
    ]


def _env(url: str, prefix: str, lease: float = 30) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(BROKER=url, PREFIX=prefix, LEASE=str(lease), PYTHONPATH=str(REPO))
    return env


def _spawn_worker(
    tmp_path: Path, url: str, prefix: str, *args: str, lease: float = 30
) -> subprocess.Popen[bytes]:
    (tmp_path / "ctlproj.py").write_text(textwrap.dedent(PROJECT))
    with open(tmp_path / f"worker-{uuid.uuid4().hex[:4]}.log", "wb") as log:  # the child's copy
        return subprocess.Popen(
            [*_script(), "-A", "ctlproj", "worker", "-l", "INFO", *args],
            cwd=tmp_path,
            env=_env(url, prefix, lease),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _client(url: str, prefix: str) -> Celery:
    app = Celery("ctlclient", broker=url, set_as_current=False)
    app.conf.docket_key_prefix = prefix
    return app


def _run(tmp_path: Path, url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "ctlproj.py").write_text(textwrap.dedent(PROJECT))
    return subprocess.run(
        [*_script(), "-A", "ctlproj", *args],
        cwd=tmp_path,
        env=_env(url, prefix),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.redis
def test_terminate_stops_a_prefork_task_and_it_is_not_run_again(
    redis_server_url: str, prefix: str, tmp_path: Path
) -> None:
    proc = _spawn_worker(
        tmp_path, redis_server_url, prefix, "-P", "prefork", "-c", "2", "-n", "pf@%h"
    )
    app = _client(redis_server_url, prefix)
    mark = f"{prefix}:runs"
    try:
        (node,) = wait_until(lambda: app.control.inspect().ping(), timeout=30, what="worker up")
        r = app.send_task("ctl.sleep", (30, mark))
        active = wait_until(
            lambda: (app.control.inspect().active() or {}).get(node), timeout=15, what="active"
        )
        assert active[0]["id"] == r.id
        child = active[0]["worker_pid"]
        stats = app.control.inspect().stats()[node]
        assert child in stats["pool"]["processes"] and stats["pid"] == proc.pid
        t0 = time.monotonic()
        replies = app.control.revoke(r.id, terminate=True, reply=True)
        assert replies == [{node: {"ok": f"terminate: {r.id}"}}]
        with pytest.raises(TaskRevokedError, match="terminated"):
            r.get(timeout=15)
        took = time.monotonic() - t0
        print(f"\nterminate -> REVOKED in {took:.2f}s")
        assert took < 10
        assert r.state == states.REVOKED
        wait_until(
            lambda: child not in app.control.inspect().stats()[node]["pool"]["processes"],
            timeout=10,
            what="the killed child to leave the pool",
        )
        # the pool still works, and the terminated task never ran again
        assert app.send_task("ctl.pid").get(timeout=15) != child
        time.sleep(1.0)
        assert int(app.docket.redis.get(mark)) == 1

        # resize and stop the pool through the control channel
        assert app.control.pool_grow(1, reply=True) == [{node: {"ok": "pool will grow"}}]
        wait_until(
            lambda: len(app.control.inspect().stats()[node]["pool"]["processes"]) == 3,
            timeout=20,
            what="a third process",
        )
        app.control.pool_shrink(1)
        wait_until(
            lambda: len(app.control.inspect().stats()[node]["pool"]["processes"]) == 2,
            timeout=20,
            what="back to two processes",
        )
        app.control.shutdown(destination=[node])
        assert proc.wait(30) == 0
        assert app.control.inspect().ping() is None
    finally:
        _stop(proc)
        app.close()


@pytest.mark.redis
def test_status_and_inspect_ping_exit_codes(
    redis_server_url: str, prefix: str, tmp_path: Path
) -> None:
    out = _run(tmp_path, redis_server_url, prefix, "status")
    assert out.returncode == 69, out
    assert out.stderr.strip().startswith("Error: No nodes replied")
    assert _run(tmp_path, redis_server_url, prefix, "inspect", "ping").returncode == 69
    app = _client(redis_server_url, prefix)

    @app.task(name="ctl.pid")
    def pid():
        return os.getpid()

    w = start(app, hostname="st@%h")
    try:
        t0 = time.monotonic()
        out = _run(tmp_path, redis_server_url, prefix, "status")
        print(f"\ncelery-docket status (a new process) took {time.monotonic() - t0:.2f}s")
        assert out.returncode == 0, out
        assert out.stdout.splitlines() == [f"->  {w.hostname}: OK", "", "1 node online."]
        out = _run(tmp_path, redis_server_url, prefix, "inspect", "ping", "--json")
        assert out.returncode == 0 and json.loads(out.stdout) == {w.hostname: {"ok": "pong"}}
        out = _run(tmp_path, redis_server_url, prefix, "status", "-d", "other@host")
        assert out.returncode == 69
    finally:
        w.stop()
        app.close()
    assert _run(tmp_path, redis_server_url, prefix, "status").returncode == 69
