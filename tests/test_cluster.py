"""Redis Cluster: ``redis+cluster://`` on a real 3-master cluster, plus the slot audit.

The audit reads every engine Lua script for the keys its ``redis.call``s touch: each must come
from KEYS, or be a run key built from the queue's run prefix (same hash tag, so same slot), or
be the single-server branch of a result write (a cluster passes an outbox and never takes it).
The live tests run the engine's core behaviours and the facade through the cluster URL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from redis.crc import key_slot

from celery_docket import Celery, chord, group
from celery_docket.engine import (
    Docket,
    Perpetual,
    admin,
    handover,
    outbox,
    ratelimit,
    scripts,
    snapshot,
)
from celery_docket.engine.cluster import is_cluster_url, parse_url
from celery_docket.engine.errors import BrokerUnavailable
from celery_docket.engine.keys import GROUP, QueueKeys
from celery_docket.engine.lua import Script
from celery_docket.engine.messages import Call
from celery_docket.engine.native import encode_call
from celery_docket.worker import WorkController
from tests.cluster import ClusterTopology
from tests.engine_helpers import running
from tests.topology import wait_for

# -- no server ---------------------------------------------------------------------------------


def test_cluster_url_forms() -> None:
    assert parse_url("redis+cluster://a:7000,b:7001") == ([("a", 7000), ("b", 7001)], None, None)
    assert parse_url("redis+cluster://u:p%40w@a/0") == ([("a", 6379)], "u", "p@w")
    assert parse_url("redis+cluster://:pw@[::1]:7000/") == ([("::1", 7000)], None, "pw")
    assert is_cluster_url("rediss+cluster://a:1") and not is_cluster_url("redis://a:1")
    with pytest.raises(ValueError, match="database 0 only"):
        parse_url("redis+cluster://a:7000/2")
    with pytest.raises(ValueError, match="names no node"):
        parse_url("redis+cluster:///0")
    with pytest.raises(ValueError, match="port"):
        parse_url("redis+cluster://a:x")


def test_every_key_of_a_queue_is_in_one_slot() -> None:
    k = QueueKeys("cd", "emails")
    names = [k.stream, k.due, k.dead, k.run("x"), k.run_prefix + "y", k.wake, k.fates]
    names += [k.outbox, k.once("cd:once:1")]
    assert len({key_slot(n.encode()) for n in names}) == 1


_CALL = re.compile(r"redis\.call\s*\(\s*'(\w+)'\s*,\s*([^,)]+)|redis\.call,\s*'(\w+)',\s*([^,)]+)")
_FROM_KEYS = re.compile(r"local\s+([\w\s,]+?)\s*=\s*(KEYS\[\d\](?:\s*,\s*KEYS\[\d\])*)")
_NOT_KEYS = {"TIME", "PUBLISH", "XINFO"}  # PUBLISH: a channel, any node; XINFO: a subcommand
_RUN_KEY = re.compile(r"^(prefix|ARGV\[1\]) \.\. [\w\[\]+]+$")
"""A run key: the queue's run prefix (``QueueKeys.run_prefix``, the queue's tag) plus an id."""


def _scripts() -> dict[str, str]:
    found = {}
    for mod in (scripts, handover, outbox, ratelimit):
        for name, value in vars(mod).items():
            if isinstance(value, str) and "redis.call" in value and not name.startswith("_"):
                found[f"{mod.__name__}.{name}"] = value
    return found


def _key_names(source: str) -> set[str]:
    """Locals bound to KEYS (``local a, b = KEYS[1], KEYS[2]``), and run keys."""
    names: set[str] = set()
    for m in _FROM_KEYS.finditer(source):
        lhs = [n.strip() for n in m.group(1).split(",")]
        rhs = [r.strip() for r in m.group(2).split(",")]
        names.update(lhs[: len(rhs)])
    # run keys: a name assigned ``prefix .. x``, or a loop variable over a list of them
    names.update(re.findall(r"\b(\w+) = prefix \.\. ", source))
    for lst in re.findall(r"\b(\w+)\[#\1 \+ 1\] = prefix \.\. ", source):
        names.update(re.findall(rf"for _, (\w+) in ipairs\({lst}\)", source))
    return names


def test_every_script_touches_only_keys_it_declares() -> None:
    found = _scripts()
    assert {"celery_docket.engine.scripts.COMPLETE", "celery_docket.engine.outbox.FINISH"} <= set(
        found
    )
    bad = []
    for name, source in found.items():
        keys = _key_names(source)
        for m in _CALL.finditer(source):
            cmd, arg = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            arg = arg.strip()
            if cmd in _NOT_KEYS:
                continue
            if arg in keys or re.fullmatch(r"KEYS\[\d\]", arg) or _RUN_KEY.match(arg):
                continue
            if (
                cmd == "SET"
                and arg == "rkey"
                and re.search(r"if (rkey ~= .. and )?outbox then", source)
            ):
                continue  # the single-server branch; with an outbox KEY it is never taken
            bad.append(f"{name}: {cmd} {arg}")
    assert not bad, "keys not declared in KEYS: " + "; ".join(bad)


def test_hand_over_is_refused_on_a_cluster() -> None:
    class Fake:
        class backend:  # noqa: N801 - stands in for a Backend attribute
            is_cluster = True

    with pytest.raises(NotImplementedError, match="Cluster"):
        handover.HandOverBatch(Fake())  # type: ignore[arg-type]


# -- a live cluster ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterTopology]:
    t = ClusterTopology().start()
    try:
        yield t
    finally:
        t.stop()


def _queues_on_two_nodes(docket: Docket) -> tuple[str, str]:
    """Two queue names whose slots are served by different masters."""
    nodes = docket.redis.nodes_manager
    first = "q0"
    home = nodes.get_node_from_slot(key_slot(docket.keys(first).stream.encode())).name
    for i in range(1, 200):
        slot = key_slot(docket.keys(f"q{i}").stream.encode())
        if nodes.get_node_from_slot(slot).name != home:
            return first, f"q{i}"
    raise AssertionError("no two queues on different nodes")


@pytest.mark.redis
@pytest.mark.topology
def test_engine_core_behaviours_on_a_cluster(cluster: ClusterTopology, prefix: str) -> None:
    docket = Docket(cluster.url, prefix=prefix)
    assert docket.backend.is_cluster
    qa, qb = _queues_on_two_nodes(docket)
    ran: list[str] = []

    @docket.task(name="add", queue=qa)
    def add(x: int, y: int) -> int:
        ran.append("add")
        return x + y

    @docket.task(name="mul", queue=qb)
    def mul(x: int, y: int) -> int:
        return x * y

    with running(docket.worker(queues=[qa, qb], pool="threads", concurrency=4)):
        assert docket.result(docket.add("add")(2, 2).id, timeout=10) == 4
        assert docket.result(docket.add("mul")(3, 3).id, timeout=10) == 9
        # keyed: a second add of a live key adds nothing
        t0 = time.monotonic()
        one = docket.add("add", when=time.time() + 1, key="k1")(5, 5)
        two = docket.add("add", when=time.time() + 1, key="k1")(6, 6)
        assert one.added and one.state == "parked" and not two.added
        assert docket.result("k1", timeout=10) == 10
        assert time.monotonic() - t0 >= 0.9
        # a batch spanning both queues' slots: one pipeline, split per node
        body = encode_call((1, 2), {}, docket.content_type)
        batch = docket.enqueue_many([Call("add", body, queue=qa), Call("mul", body, queue=qb)])
        assert [docket.result(e.id, timeout=10) for e in batch] == [3, 2]
    docket.close()


@pytest.mark.redis
@pytest.mark.topology
def test_once_token_and_a_lost_script_on_a_cluster(cluster: ClusterTopology, prefix: str) -> None:
    docket = Docket(cluster.url, prefix=prefix)
    try:
        body = encode_call((1, 1), {}, docket.content_type)
        call = Call("f", body, queue="q", when=time.time() + 60, once=f"{prefix}:scope:0")
        first, again = docket.enqueue(call), docket.enqueue(call)
        assert first.added and not again.added
        assert docket.redis.exists(docket.keys("q").once(f"{prefix}:scope:0"))
        docket.redis.script_flush()  # every primary forgets the scripts: re-loaded on NOSCRIPT
        calls = [
            Call("f", body, queue=f"q{i}", key=f"x{i}", when=time.time() + 60) for i in range(6)
        ]
        assert all(e.added for e in docket.enqueue_many(calls))
    finally:
        docket.close()


@pytest.mark.redis
@pytest.mark.topology
def test_a_perpetual_ticks_once_with_two_workers(cluster: ClusterTopology, prefix: str) -> None:
    docket = Docket(cluster.url, prefix=prefix)
    runs: list[float] = []

    @docket.task(name="tick", perpetual=Perpetual(every=timedelta(milliseconds=200)))
    def tick() -> None:
        runs.append(time.time())

    t0 = time.time()
    with (
        running(docket.worker(pool="solo", name="w1")),
        running(docket.worker(pool="solo", name="w2")),
    ):
        time.sleep(1.5)
    elapsed = time.time() - t0  # start-up and shutdown included: ticks may run in both
    docket.close()
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert 4 <= len(runs) <= elapsed / 0.2 + 1, (len(runs), elapsed)
    assert min(gaps) >= 0.19, gaps  # once per interval: two workers never both tick


@pytest.mark.redis
@pytest.mark.topology
def test_results_and_a_chord_through_the_facade(cluster: ClusterTopology, prefix: str) -> None:
    app = Celery(f"c{uuid.uuid4().hex[:6]}", broker=cluster.url, backend=cluster.url)
    app.conf.update(docket_key_prefix=prefix)
    body_runs: list[list[int]] = []

    @app.task(name="c.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="c.part")
    def part(i: int) -> int:
        return i

    @app.task(name="c.total")
    def total(values: list[int]) -> int:
        body_runs.append(values)
        return sum(values)

    w = WorkController(app, pool="threads", concurrency=4, setup_logging=False).start_in_thread()
    try:
        assert add.delay(2, 2).get(timeout=10) == 4
        assert add.apply_async((4, 4), countdown=1).get(timeout=10) == 8
        assert chord([part.s(i) for i in range(5)])(total.s()).get(timeout=15) == 10
        assert group(add.s(i, i) for i in range(6))().get(timeout=10) == [0, 2, 4, 6, 8, 10]
        assert snapshot.heartbeats(app.docket)  # the index, then MGET of the beats
        time.sleep(0.5)
        assert len(body_runs) == 1 and sorted(body_runs[0]) == [0, 1, 2, 3, 4]
        queue = app.docket.keys("celery")
        assert not app.docket.redis.hlen(queue.outbox)  # every result copied out
    finally:
        w.stop()
        app.close()


@pytest.mark.redis
@pytest.mark.topology
def test_a_result_left_in_the_outbox_is_finished_by_a_keeper(
    cluster: ClusterTopology, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that acked (result in the outbox) and died before the copy: another worker's
    keeper copies and announces the result."""
    docket = Docket(cluster.url, prefix=prefix)
    docket.task(lambda: None, name="noop")
    k = docket.keys("default")
    docket.ensure_group("default")
    execution = docket.add("noop")()
    reply = docket.redis.xreadgroup(GROUP, "dead-worker", {k.stream: ">"}, count=1)
    mid = reply[0][1][0][0].decode()
    rkey = docket.results.key(execution.id)
    committed = Script(scripts.ACK_FAST)(
        docket.redis, [k.stream, k.outbox], [GROUP, mid, rkey, b"json:42", 60_000]
    )
    assert committed == [1] and docket.redis.get(rkey) is None
    assert docket.redis.hexists(k.outbox, "v:" + rkey)
    monkeypatch.setattr(outbox, "SWEEP_AFTER_MS", 0)
    try:
        with running(docket.worker(lease_seconds=0.3)):
            wait_for(lambda: docket.redis.get(rkey), 10, "the swept result")
        assert not docket.redis.hlen(k.outbox)
        assert docket.redis.pttl(rkey) > 0
    finally:
        docket.close()


_WORKER = """
import sys, time
from celery_docket.engine import Docket
docket = Docket(sys.argv[1], prefix=sys.argv[2])

@docket.task(name="slow")
def slow(path):
    open(path, "w").write("started")
    time.sleep(60)

docket.worker(pool="threads", concurrency=2, lease_seconds=1.0).run()
"""


@pytest.mark.redis
@pytest.mark.topology
def test_kill_9_of_a_worker_then_another_finishes_its_work(
    cluster: ClusterTopology, prefix: str, tmp_path: Path
) -> None:
    docket = Docket(cluster.url, prefix=prefix)
    marker = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, cluster.url, prefix],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ran: list[str] = []

        @docket.task(name="slow")
        def slow(path: str) -> str:
            ran.append(path)
            return "recovered"

        execution = docket.add("slow")(str(marker))
        wait_for(marker.exists, 20, "the doomed worker to start the task")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with running(docket.worker(pool="threads", lease_seconds=1.0)):
            assert docket.result(execution.id, timeout=15) == "recovered"
        assert ran == [str(marker)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        docket.close()


@pytest.mark.redis
@pytest.mark.topology
def test_a_queue_slot_migrated_while_a_worker_drains_loses_nothing(
    cluster: ClusterTopology, prefix: str
) -> None:
    """MOVED and ASK: the queue's slot moves to another master, key by key, mid-drain."""
    docket = Docket(cluster.url, prefix=prefix)
    done: list[int] = []
    lock = threading.Lock()

    @docket.task(name="note")
    def note(n: int) -> int:
        time.sleep(0.01)
        with lock:
            done.append(n)
        return n

    total = 400
    body = [encode_call((n,), {}, docket.content_type) for n in range(total)]
    k = docket.keys("default")
    docket.enqueue_many([Call("note", b, queue="default") for b in body[:300]])
    for i, b in enumerate(body[300:350]):  # parked and keyed: run records in the slot too
        docket.enqueue(Call("note", b, queue="default", key=f"p{i}", when=time.time() + 0.5))
    slot = key_slot(k.stream.encode())
    source = cluster.node_of(slot)
    target = next(n for n in cluster.nodes if n is not source)
    refused: list[int] = []

    def produce() -> None:
        """Keyed adds while the slot moves: TRYAGAIN until it has moved; retried when told."""
        for i, b in enumerate(body[350:375]):
            while True:
                try:
                    docket.enqueue(Call("note", b, queue="default", key=f"m{i}"))
                    break
                except BrokerUnavailable:
                    refused.append(i)
                    time.sleep(0.05)
            time.sleep(0.02)

    with running(docket.worker(pool="threads", concurrency=4, lease_seconds=2.0)):
        wait_for(lambda: done, 10, "the drain to start")
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        moved = cluster.migrate_slot(slot, target, pause=0.02)
        producer.join(30)
        at_move_end = len(done)
        assert moved >= 3 and cluster.node_of(slot) is target
        assert at_move_end < 350, "the drain ended before the slot moved: nothing was tested"
        docket.enqueue_many([Call("note", b, queue="default") for b in body[375:]])
        wait_for(lambda: len(set(done)) == total, 60, "every task to run")
        time.sleep(0.5)
    docket.close()
    assert sorted(set(done)) == list(range(total))
    assert len(done) - total <= 0, f"{len(done) - total} ran twice"


@pytest.mark.redis
@pytest.mark.topology
def test_the_prefork_cli_worker_on_a_cluster(
    cluster: ClusterTopology, prefix: str, tmp_path: Path
) -> None:
    """``celery-docket worker -P prefork`` through the cluster URL: children reopen their own
    cluster clients after the fork; SIGTERM stops it cleanly."""
    env = {
        **os.environ,
        "CD_TEST_BROKER": cluster.url,
        "CD_TEST_PREFIX": prefix,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "celery_docket.cli.main", "-A", "tests.prefork_celery_app"]
    proc = subprocess.Popen(
        [*cmd, "worker", "-P", "prefork", "-c", "2", "-l", "INFO"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = Celery("client", broker=cluster.url, set_as_current=False)
    client.conf.docket_key_prefix = prefix
    try:
        pids = {client.send_task("pf.pid").get(timeout=30) for _ in range(6)}
        assert pids and proc.pid not in pids
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait(10)
        client.close()
        log.close()
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]


@pytest.mark.redis
@pytest.mark.topology
def test_a_cluster_result_backend_behind_a_single_server_broker(
    cluster: ClusterTopology, redis_server_url: str, prefix: str
) -> None:
    app = Celery(f"c{uuid.uuid4().hex[:6]}", broker=redis_server_url, backend=cluster.url)
    app.conf.update(docket_key_prefix=prefix)

    @app.task(name="c.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    w = WorkController(app, pool="threads", concurrency=2, setup_logging=False).start_in_thread()
    try:
        result = mul.delay(3, 4)
        assert result.get(timeout=10) == 12
        stored = app.results.backend.client.get(f"celery-task-meta-{result.id}")
        assert app.results.backend.is_cluster and b'"SUCCESS"' in stored
    finally:
        w.stop()
        app.close()


# -- sharded queues ----------------------------------------------------------------------------


def test_a_sharded_queue_routes_by_key_once_token_or_id() -> None:
    docket = Docket("memory://shards", prefix="s", shards={"work": 4, "plain": 1})
    try:
        assert docket.shard_queues("work") == [f"work#{i}" for i in range(4)]
        assert docket.shard_queues("plain") == ["plain"]
        assert docket.shard_queues("other") == ["other"]
        assert docket.shard_of("work", "k1") == docket.shard_of("work", "k1")
        assert len({docket.shard_of("work", f"id{i}") for i in range(40)}) == 4
        assert docket.keys(docket.shard_of("work", "k1")).tag.startswith("{s:work#")
        with pytest.raises(ValueError, match="'#'"):
            Docket("memory://shards", prefix="s", shards={"a#b": 2})
        with pytest.raises(ValueError, match="is sharded"):
            docket.keys("work")  # never an empty look-alike of the sharded queue
        for i in range(8):
            docket.enqueue(Call("f", b"x", queue="work", when=time.time() + 60, key=f"k{i}"))
        assert admin.purge(docket, ["work"]) == 8  # every shard
    finally:
        docket.close()


@pytest.mark.redis
@pytest.mark.topology
def test_a_sharded_queue_spreads_over_masters(cluster: ClusterTopology, prefix: str) -> None:
    docket = Docket(cluster.url, prefix=prefix, shards={"work": 6})
    nodes = docket.redis.nodes_manager
    homes = {
        nodes.get_node_from_slot(key_slot(docket.keys(q).stream.encode())).name
        for q in docket.shard_queues("work")
    }
    assert len(homes) >= 2, "six shards should land on more than one master"
    done: list[int] = []
    lock = threading.Lock()

    def note(n: int) -> int:
        with lock:
            done.append(n)
        return n

    docket.task(note, name="note", queue="work")
    body = [encode_call((n,), {}, docket.content_type) for n in range(120)]
    docket.enqueue_many([Call("note", b, queue="work") for b in body[:100]])
    keyed = [Call("note", b, queue="work", key=f"k{i}") for i, b in enumerate(body[100:110])]
    assert all(e.added for e in docket.enqueue_many(keyed))
    assert not any(e.added for e in docket.enqueue_many(keyed))  # idempotent across shards
    parked = docket.enqueue(
        Call("note", body[110], queue="work", key="late", when=time.time() + 60)
    )
    assert parked.state == "parked" and docket.execution_record("late", "work")["s"] == "parked"
    assert docket.cancel("late", "work") == "parked"
    once = Call("note", body[111], queue="work", once=f"{prefix}:once:0")
    assert docket.enqueue(once).added and not docket.enqueue(once).added
    soon = docket.enqueue(Call("note", body[112], queue="work", when=time.time() + 0.5))
    assert soon.state == "parked"
    worker = docket.worker(queues=["work"], pool="threads", concurrency=4)
    assert set(worker.keys) == set(docket.shard_queues("work"))
    with running(worker):
        wait_for(lambda: len(done) >= 112, 20, "every task to run")  # not the cancelled one
        time.sleep(0.3)
    docket.close()
    assert sorted(done) == [*range(110), 111, 112]
