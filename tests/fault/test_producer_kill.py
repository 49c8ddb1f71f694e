"""FAULTS: a producer SIGKILLed in the middle of a large pipelined ``enqueue_many``.

Redis runs only commands it received whole, and each add is one command (an ``XADD``) or one
script: a kill can cut a pipeline between adds, never inside one. The consistency scan below
checks that on the data itself: every stream entry, parked record and execution record is
whole and agrees with the others. Then a worker drains everything: every add the producer saw
acknowledged runs exactly once, and nothing is dead-lettered.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from celery_docket.engine import Docket
from tests.fault.harness import ROOT, Cluster, committed_results, dead_entries, wait_until

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(120)]

SCRIPT = str(Path(__file__).with_name("bulk_producer.py"))
ENTRY_FIELDS = {b"i", b"n", b"b", b"a"}


def _scan(docket: Docket, queue: str = "default") -> tuple[int, int, list[str]]:
    """(stream entries, parked records, problems) for one queue."""
    k = docket.keys(queue)
    r = docket.redis
    problems: list[str] = []
    entries = r.xrange(k.stream)
    by_mid = {}
    for mid, fields in entries:
        if not ENTRY_FIELDS <= set(fields):
            problems.append(f"entry {mid!r} lacks fields: {sorted(fields)}")
        by_mid[mid] = fields
    parked = r.zrange(k.due, 0, -1, withscores=True)
    for eid, score in parked:
        rec = r.hgetall(k.run(eid.decode()))
        if rec.get(b"s") != b"parked" or not {b"n", b"b", b"w"} <= set(rec):
            problems.append(f"parked {eid!r} has record {rec!r}")
        elif int(rec[b"w"]) != int(score):
            problems.append(f"parked {eid!r} due {score} but record says {rec[b'w']!r}")
    parked_ids = {eid for eid, _ in parked}
    for key in r.scan_iter(match=k.run_prefix + "*", count=1000):
        rec = r.hgetall(key)
        eid = key[len(k.run_prefix) :]
        state = rec.get(b"s")
        if state == b"parked":
            if eid not in parked_ids:
                problems.append(f"record {key!r} parked but not in the due set")
        elif state == b"queued":
            entry = by_mid.get(rec.get(b"m", b""))
            if entry is None or entry.get(b"i") != eid:
                problems.append(f"record {key!r} queued at {rec.get(b'm')!r}: no such entry")
        else:
            problems.append(f"record {key!r} in state {state!r}")
    return len(entries), len(parked), problems


def test_producer_killed_mid_enqueue_many_leaves_no_half_written_record(
    redis_server_url: str, prefix: str, ledger_dir: Path, cluster: Cluster, docket: Docket
) -> None:
    rng = random.Random(7)
    acked: list[str] = []
    beyond = 0
    for round_ in range(3):
        ledger = ledger_dir / f"producer-{round_}.log"
        proc = subprocess.Popen(
            [sys.executable, SCRIPT, redis_server_url, prefix, str(ledger)],
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            wait_until(lambda: ledger.exists() and b"ENQ" in ledger.read_bytes(), 30)  # noqa: B023
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        lines = ledger.read_bytes().split(b"\n")[:-1]
        acked += [ln.split()[1].decode() for ln in lines if ln.startswith(b"ENQ ")]
        entries, parked, problems = _scan(docket)
        beyond = entries + parked - len(acked)
        print(
            f"\nround {round_}: {len(acked)} acknowledged adds in all, {entries} stream entries, "
            f"{parked} parked ({beyond} written but not acknowledged), "
            f"{len(problems)} inconsistencies"
        )
        assert problems == [], problems[:10]
        assert beyond >= 0, "acknowledged adds are missing"

    cluster.spawn("drain", pool="threads", concurrency=8, lease=5)
    wait_until(
        lambda: all(committed_results(docket, acked).values()), 60, 0.25, "every acked add ran"
    )
    results = committed_results(docket, acked)
    assert all(r is not None for r in results.values())
    runs: dict[str, int] = {}
    for rec in cluster.records():
        if rec[0] == "START":
            runs[rec[1]] = runs.get(rec[1], 0) + 1
    twice = [i for i in acked if runs.get(i, 0) != 1]
    assert twice == [], f"{len(twice)} acknowledged adds did not run exactly once"
    assert dead_entries(docket) == []
