"""The benchmark harness's pure parts, and that a peer whose library is missing is skipped.

The benchmarks run for minutes, so their helpers are checked here in milliseconds: a wrong
percentile or a peer that crashes instead of being skipped would otherwise show up only in a
long run's table.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import procs
from benchmarks.harness.redis_data import with_db
from benchmarks.harness.stats import fmt, fmt_ratio, percentile, summary
from benchmarks.peers.drain import Skipped, load
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]


def test_percentile_interpolates_and_handles_empty() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert math.isnan(percentile([], 50))


def test_summary_skips_failed_repetitions() -> None:
    s = summary([3.0, None, float("nan"), 1.0, 2.0])
    assert (s["median"], s["min"], s["max"]) == (2.0, 1.0, 3.0)
    assert summary([None])["median"] is None
    assert fmt(s, ".1f") == "2.0 [1.0-3.0]"
    assert fmt(None) == "n/a"
    assert fmt_ratio(summary([12.0, 14.0])) == "13.0x [12.0-14.0]"


def test_with_db_keeps_host_and_port() -> None:
    assert with_db("redis://127.0.0.1:6380/0", 3) == "redis://127.0.0.1:6380/3"


def test_stop_tree_stops_only_what_it_started() -> None:
    proc = procs.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    assert procs.proc_start(proc.pid) is not None
    assert procs.stop_tree(proc, timeout=5)
    assert proc.poll() is not None
    assert procs.last_json('noise\n{"a": 1}\nmore') == {"a": 1}


def test_launcher_listens_on_loopback_and_keeps_data_over_kill() -> None:
    server = RedisServer().start()
    try:
        assert server.url.startswith("redis://127.0.0.1:")
        assert "--bind" in server.command() and "127.0.0.1" in server.command()
        server.restart()
        assert server.proc is not None and server.proc.poll() is None
    finally:
        server.remove()
    assert server.proc is None


def test_a_missing_peer_is_skipped_with_a_note() -> None:
    with pytest.raises(Skipped, match="ardiq"):
        load("ardiq", "redis://127.0.0.1:1/3")


def test_compare_help_lists_the_peers_option() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0 and "--peers" in out.stdout


def test_entry_size_reports_a_lean_queued_task(redis_server_url: str) -> None:
    """Issue 14: a queued ``add.delay(i, i)`` takes at most 400 bytes of Redis."""
    import redis

    from benchmarks.entry_size import measure

    report = measure(redis_server_url, 300)
    assert report["entry"]["n"] == "tasks.add" and '"v":2' in report["entry"]["b"]
    assert 0 < report["stream_memory_usage_per_task"] <= 400
    assert not list(redis.Redis.from_url(redis_server_url).scan_iter("*entry-size-*"))
