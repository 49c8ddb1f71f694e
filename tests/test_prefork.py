"""The prefork pool on a real redis-server: children, recycling, hard time limits, SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from celery_docket.engine import Docket, TaskFailed

pytestmark = pytest.mark.redis


@pytest.fixture
def pool(redis_server_url: str, prefix: str):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.prefork_app", redis_server_url, prefix, "1.0", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    docket = Docket(redis_server_url, prefix=prefix)
    yield proc, docket
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    docket.close()


def test_children_run_tasks_recycle_and_enforce_hard_time_limit(pool) -> None:
    proc, docket = pool
    # two children serve work; max_tasks=5 recycles them, so over 30 calls pids change
    pids = set()
    for _ in range(30):
        e = docket.add("pid")()
        pids.add(docket.result(e.id, timeout=15))
    assert proc.pid not in pids
    assert len(pids) >= 4, f"children were not recycled: {pids}"

    # a task over the hard time limit is killed and reported, not run again
    e = docket.add("sleep")(5)
    t0 = time.monotonic()
    with pytest.raises(TaskFailed) as info:
        docket.result(e.id, timeout=15)
    assert info.value.type == "TimeLimitExceeded"
    assert time.monotonic() - t0 < 5
    # the pool still works afterwards
    e = docket.add("pid")()
    assert docket.result(e.id, timeout=15)

    # a task that kills its process is retried up to max_deliveries, then dead-lettered
    e = docket.add("die")()
    deadline = time.monotonic() + 20
    dead = docket.keys("default").dead
    while not docket.redis.xlen(dead) and time.monotonic() < deadline:
        time.sleep(0.1)
    ((_mid, fields),) = docket.redis.xrange(dead)
    assert fields[b"i"].decode() == e.id
    assert b"delivered" in fields[b"r"]

    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()[-2000:]
