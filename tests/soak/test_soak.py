"""The soak job: steady mixed load for ``CD_SOAK_SECONDS`` (30 minutes in the job), with the
worker's memory and Redis's key count and memory sampled; after a warm-up, neither may grow.

Not part of every CI pass (pytest deselects the ``soak`` marker by default): run it with
``scripts/soak.sh`` or ``pytest -m soak``. The worker is the real CLI (prefork, 2 children).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

SECONDS = float(os.environ.get("CD_SOAK_SECONDS", "1800"))
RATE = float(os.environ.get("CD_SOAK_RATE", "100"))
"""Calls per second the producer sends."""
WARMUP = 0.25
"""Fraction of the run treated as warm-up (caches, pools, result TTLs filling)."""

pytestmark = [pytest.mark.soak, pytest.mark.redis, pytest.mark.timeout(SECONDS + 300)]


def _group_rss_kb(pgid: int) -> int:
    """Resident memory of every process in the worker's process group, from /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ProcessLookupError):
            continue
    return total


def test_steady_load_does_not_grow_memory_or_keys(
    redis_server_url: str, prefix: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CD_SOAK_BROKER": redis_server_url,
        "CD_SOAK_PREFIX": prefix,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    os.environ.update({"CD_SOAK_BROKER": redis_server_url, "CD_SOAK_PREFIX": prefix})
    from tests.soak.soak_app import add, fail, ignored, retry_once  # reads the environment

    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - owned by the worker process
    cmd = [sys.executable, "-m", "celery_docket.cli.main", "-A", "tests.soak.soak_app"]
    worker = subprocess.Popen(
        [*cmd, "worker", "-P", "prefork", "-c", "2", "-B", "-l", "WARNING"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    r = redis.Redis.from_url(redis_server_url)
    samples: list[tuple[float, int, int, int]] = []  # (t, worker rss kB, keys, redis bytes)
    sent = failed_gets = 0
    started = time.monotonic()
    next_sample = started
    try:
        pending = []
        while time.monotonic() - started < SECONDS:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            n = sent
            kind = n % 10
            if kind < 6:
                pending.append(add.delay(n, 1))
            elif kind == 6:
                pending.append(fail.delay(n))
            elif kind == 7:
                pending.append(retry_once.delay(n))
            elif kind == 8:
                ignored.delay(n)
            else:
                add.apply_async((n, 2), countdown=1)
            sent += 1
            if len(pending) >= 200:  # read results in batches, as a web app would
                for res in pending:
                    try:
                        res.get(timeout=30, propagate=False)
                    except Exception:  # noqa: BLE001 - counted, reported below
                        failed_gets += 1
                pending.clear()
            now = time.monotonic()
            if now >= next_sample:
                info = r.info("memory")
                samples.append(
                    (now - started, _group_rss_kb(worker.pid), r.dbsize(), info["used_memory"])
                )
                next_sample = now + max(1.0, SECONDS / 120)
            time.sleep(max(0.0, started + sent / RATE - time.monotonic()))
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            code = worker.wait(10)
        r.close()
    steady = [s for s in samples if s[0] >= SECONDS * WARMUP]
    assert len(steady) >= 8, samples
    quarter = max(2, len(steady) // 4)
    first, last = steady[:quarter], steady[-quarter:]

    def grew(i: int) -> float:
        return statistics.median(s[i] for s in last) / max(
            1, statistics.median(s[i] for s in first)
        )

    print(
        f"\nsoak {SECONDS:.0f}s at {RATE:.0f}/s: {sent} sent, {failed_gets} gets failed; "
        f"worker RSS {first[0][1] / 1024:.0f} -> {last[-1][1] / 1024:.0f} MiB "
        f"(x{grew(1):.2f}), keys {first[0][2]} -> {last[-1][2]} (x{grew(2):.2f}), "
        f"Redis memory x{grew(3):.2f}"
    )
    assert failed_gets == 0
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert grew(1) < 1.10, f"worker memory grows: {samples}"
    assert grew(2) < 1.25, f"Redis keys grow: {samples}"
    assert grew(3) < 1.25, f"Redis memory grows: {samples}"
