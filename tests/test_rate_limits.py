"""Rate limits: the engine's shared schedule, and ``rate_limit`` on Celery tasks.

Celery's limit is a token bucket per worker; ours holds across every worker (MIGRATING.md
section 4). Checked on memory:// and a real redis-server, and across two worker processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celery_docket import Celery
from celery_docket.engine import Docket
from celery_docket.engine.ratelimit import RateLimits, interval_us


@pytest.fixture
def limits(broker_url: str, prefix: str) -> Iterator[RateLimits]:
    docket = Docket(broker_url, prefix=prefix)
    yield RateLimits(docket.redis, docket.prefix)
    docket.close()


def test_reservations_are_spaced_by_the_interval(limits: RateLimits) -> None:
    every = interval_us(10)  # 10/s: 100 ms apart
    slots = [limits.reserve_slot("t.add", every) for _ in range(5)]
    assert slots[0][0] == 0, "the first run of an idle task starts at once (a burst of one)"
    gaps = [b[1] - a[1] for a, b in zip(slots, slots[1:])]
    assert gaps == [every] * 4
    waits = [w for w, _ in slots]
    assert all(b > a for a, b in zip(waits, waits[1:]))
    assert 350_000 <= waits[-1] <= 400_000


def test_no_limit_and_run_time_overrides(limits: RateLimits) -> None:
    assert limits.interval("t.x", 0) == 0 and limits.reserve("t.x", 0) == 0
    assert limits.interval("t.x", 2) == 500_000
    limits.set_limit("t.x", 0)  # control rate_limit t.x 0: unlimited
    assert limits.interval("t.x", 2) == 0
    limits.set_limit("t.y", 60 / 60)  # a task with no limit of its own gets one
    assert limits.interval("t.y", 0) == 1_000_000
    limits.set_limit("t.x", None)
    assert limits.interval("t.x", 2) == 500_000


def test_other_processes_see_an_override_within_the_refresh(limits: RateLimits) -> None:
    other = RateLimits(limits.client, limits.prefix)
    assert other.interval("t.z", 0) == 0
    limits.set_limit("t.z", 4)
    other._read_at -= 2.0  # as if the refresh period had passed
    assert other.interval("t.z", 0) == 250_000


@settings(max_examples=25, deadline=None)
@given(
    per_second=st.floats(min_value=0.5, max_value=2000),
    names=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=30),
)
def test_property_slots_of_one_task_never_closer_than_its_interval(
    per_second: float, names: list[str]
) -> None:
    """However reservations of several tasks interleave, one task's slots are spaced by at
    least its interval, and none lies in the past (its wait is never negative)."""
    docket = Docket(f"memory://{uuid.uuid4().hex[:8]}", prefix="p")
    limits = RateLimits(docket.redis, docket.prefix)
    every = interval_us(per_second)
    seen: dict[str, list[int]] = {}
    for name in names:
        wait, slot = limits.reserve_slot(name, every)
        assert wait >= 0
        seen.setdefault(name, []).append(slot)
    for slots in seen.values():
        assert all(b - a >= every for a, b in zip(slots, slots[1:]))


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "celery_docket.cli.main", "-A", "tests.rate_limited_app"]
    with log.open("wb") as out:  # the worker writes through its own copy
        return subprocess.Popen(
            [*cmd, "worker", "-P", "threads", "-c", "4", "-l", "WARNING"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.redis
def test_rate_limit_holds_across_two_workers(
    redis_server_url: str, prefix: str, tmp_path: Path
) -> None:
    """rate_limit="5/s" with two 4-thread workers: 12 runs 200 ms apart (Celery: 5/s each)."""
    env = {
        **os.environ,
        "CD_RL_BROKER": redis_server_url,
        "CD_RL_PREFIX": prefix,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    app = Celery("rl", broker=redis_server_url, backend=redis_server_url)
    app.conf.docket_key_prefix = prefix
    workers = [_worker(env, tmp_path / f"w{i}.log") for i in range(2)]
    try:
        time.sleep(1.5)
        results = [app.send_task("rl.stamp", args=(i,)) for i in range(12)]
        stamps = sorted(r.get(timeout=30)[1] for r in results)
        hosts = {r.get(timeout=1)[0] for r in results}
        fast = [app.send_task("rl.free", args=(i,)) for i in range(20)]
        started = time.monotonic()
        assert [r.get(timeout=10) for r in fast] == list(range(20))
        unlimited_took = time.monotonic() - started
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(20) for w in workers]
        app.close()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    print(f"\nrate 5/s on 2 workers: gaps {min(gaps):.3f}-{max(gaps):.3f}s, hosts {len(hosts)}")
    assert min(gaps) >= 0.18, gaps  # 200 ms slots, scheduling jitter aside
    assert stamps[-1] - stamps[0] >= 11 * 0.2 - 0.05
    assert len(hosts) == 2, "both workers ran the limited task"
    assert unlimited_took < 3, "a task without a limit was held back"
    assert codes == [0, 0]
