"""ACLs: a worker and a producer run as a Redis user limited to the command set
docs/scaling.md documents (``ACL_COMMANDS`` below is that list), on a real redis-server.

The scenario covers what a deployment does: enqueue, run, results, parked (countdown) work,
a beat tick, ``inspect`` and ``info``. A command missing from the list fails the scenario
(the server refuses it with NOPERM); the list is also checked to be the minimum: every
command in it was used by the scenario (seen by ``MONITOR``, scripts' commands included).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from celery_docket import Celery, chord
from celery_docket.worker import WorkController
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.topology]

#: The commands the worker and the producer need (documented in docs/scaling.md).
ACL_COMMANDS = sorted(
    """
    ping hello time
    evalsha script|load
    xadd xreadgroup xack xdel xlen xpending xclaim xautoclaim xrange xrevrange
    xgroup|create xgroup|delconsumer xinfo|consumers
    get set mget exists del expire pexpire incrby
    hget hmget hgetall hset hdel hlen
    zadd zrem zcard zrange zrangebyscore zremrangebyscore zremrangebyrank
    sadd smembers rpush lrange ltrim llen
    multi exec wait
    publish subscribe unsubscribe
    """.split()
)
"""Commands the scenario does not reach on a healthy run, but the worker issues when it
must: reclaiming a dead worker's messages (xautoclaim, xclaim in a script), reading the
dead-letter stream (xrange, xrevrange), chord bookkeeping (incrby), durable enqueue (wait),
the connection health check after 30 s idle and the CLI's broker check (ping)."""
RARE = {"xautoclaim", "xclaim", "xrange", "xrevrange", "incrby", "wait", "ping"}

#: Key and channel patterns, for the default key prefix ``cd``.
ACL_KEYS = [
    "~{cd:*",
    "~cd:*",
    "~celery-task-meta-*",
    "~celery-taskset-meta-*",
    "~celery-docket-*",
    "~celery",
    "~celery\x06\x16*",
]
ACL_CHANNELS = ["&{cd:*", "&cd:*", "&celery-task-meta-*"]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    s = RedisServer().start()
    try:
        yield s
    finally:
        s.kill()


def scenario(url: str) -> dict[str, Any]:
    """A producer and a worker doing what a deployment does; returns what it observed."""
    app = Celery(f"a{uuid.uuid4().hex[:6]}", broker=url, backend=url, set_as_current=False)
    ticks: list[float] = []

    @app.task(name="a.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="a.total")
    def total(values: list[int]) -> int:
        return sum(values)

    @app.task(name="a.tick")
    def tick() -> None:
        ticks.append(time.time())

    app.conf.beat_schedule = {"tick": {"task": "a.tick", "schedule": 0.5}}
    w = WorkController(app, pool="threads", concurrency=2, setup_logging=False).start_in_thread()
    try:
        out: dict[str, Any] = {"now": add.delay(1, 2).get(timeout=10)}
        t0 = time.monotonic()
        out["parked"] = add.apply_async((2, 2), countdown=0.5).get(timeout=10)
        out["parked_waited"] = time.monotonic() - t0 >= 0.45
        first = add.apply_async((1, 1), task_id=f"k-{uuid.uuid4().hex}")
        again = add.apply_async((1, 1), task_id=first.id)
        out["keyed"] = again.id == first.id and first.get(timeout=10) == 2
        out["chord"] = chord([add.s(i, i) for i in range(3)])(total.s()).get(timeout=10)
        doomed = add.apply_async((0, 0), countdown=30)
        app.control.revoke(doomed.id)
        out["revoked"] = doomed.state == "REVOKED"
        inspect = app.control.inspect(timeout=2)
        out["ping"] = bool(inspect.ping())
        out["stats"] = bool(inspect.stats())
        out["active"] = inspect.active() is not None
        from celery_docket.control import queue_overview

        out["info"] = "celery" in queue_overview(app, None)["queues"]
        deadline = time.monotonic() + 5
        while not ticks and time.monotonic() < deadline:
            time.sleep(0.05)
        out["ticked"] = bool(ticks)
    finally:
        w.stop()
        app.close()
    return out


CONTAINERS = {"client", "xinfo", "script", "config", "object", "xgroup", "pubsub", "command"}


def command_name(line: str) -> str:
    """``XGROUP CREATE ...`` -> ``xgroup|create`` (ACL's spelling), ``XADD ...`` -> ``xadd``."""
    words = [w.strip('"').lower() for w in line.split()[:2]]
    if words[0] in CONTAINERS and len(words) > 1:
        return f"{words[0]}|{words[1]}"
    return words[0]


END_MARK = "acl-test-end"


def _monitor(port: int, seen: set[str]) -> None:
    """Record every command until the end mark; MONITOR is ordered, so none after it is missed."""
    conn = redis.Redis(port=port).monitor()
    with conn as m:
        for event in m.listen():
            if END_MARK in event["command"]:
                return
            seen.add(command_name(event["command"]))


def test_worker_and_producer_run_as_a_user_limited_to_the_documented_commands(
    server: RedisServer,
) -> None:
    admin = redis.Redis(port=server.port)
    commands = " ".join(f"+{c}" for c in ACL_COMMANDS)
    admin.execute_command(
        "ACL", "SETUSER", "docket", "on", ">secret", "resetkeys", "resetchannels", "-@all",
        *commands.split(), *ACL_KEYS, *ACL_CHANNELS,
    )  # fmt: skip
    admin.execute_command("ACL", "LOG", "RESET")
    seen: set[str] = set()
    watcher = threading.Thread(target=_monitor, args=(server.port, seen), daemon=True)
    watcher.start()
    time.sleep(0.2)
    try:
        out = scenario(f"redis://docket:secret@127.0.0.1:{server.port}/0")
    finally:
        admin.echo(END_MARK)  # everything the scenario sent is ahead of it in MONITOR's order
        watcher.join(timeout=10)
    denied = admin.execute_command("ACL", "LOG")
    assert denied == [], denied
    assert out == {
        "now": 3,
        "parked": 4,
        "parked_waited": True,
        "keyed": True,
        "chord": 6,
        "revoked": True,
        "ping": True,
        "stats": True,
        "active": True,
        "info": True,
        "ticked": True,
    }
    print("commands used:", sorted(seen))
    assert set(ACL_COMMANDS) - seen <= RARE, sorted(set(ACL_COMMANDS) - seen - RARE)
    for name in RARE:  # each is really issued somewhere
        assert _issued(name), name


def _issued(name: str) -> bool:
    import re
    from pathlib import Path

    import celery_docket

    root = Path(celery_docket.__file__).parent
    pattern = re.compile(rf"""\.{name}\(|call\(['"]{name}['"]|command\(["']{name.upper()}""", re.I)
    return any(pattern.search(p.read_text()) for p in root.rglob("*.py"))
