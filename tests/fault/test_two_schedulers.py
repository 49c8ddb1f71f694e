"""Two ``celery-docket beat`` processes at once (a supervisor started a second by mistake, or
two replicas both run one): each tick is enqueued once, and killing one loses no tick
beyond the lease. Ticks run on a separate worker; the ledger is a file outside Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fault.test_facade_faults import Workers, _ledger

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(90)]


def test_two_scheduler_only_processes_enqueue_each_tick_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "CD_FAULT_TICK": "1.0"}
    procs = Workers(env, tmp_path)
    try:
        procs.start("runner")  # the only consumer; ticks from both schedulers land here
        procs.start("beat1", "beat")
        procs.start("beat2", "beat")
        time.sleep(12)
        killed_at = procs.kill9("beat1")
        time.sleep(8)
    finally:
        codes = procs.stop_all()
    logs = {n: (tmp_path / f"{n}.log").read_text(errors="replace") for n in procs.procs}
    ticks = sorted(float(r[2]) for r in _ledger(env, "TICK"))
    assert len(ticks) >= 14, (ticks, logs["runner"][-2000:])
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    print(f"\ntwo schedulers: {len(ticks)} ticks in ~20 s, gaps {min(gaps):.2f}-{max(gaps):.2f}s")
    assert min(gaps) > 0.9, f"a tick was enqueued twice: {gaps}"
    for a, b in zip(ticks, ticks[1:]):
        if b - a > 1.5:  # only around the kill: the lease (2 s) plus one interval
            assert a - 0.5 <= killed_at <= b and b - a < 4.5, (a, b, killed_at)
    assert codes["runner"] == 0 and codes["beat2"] == 0, (codes, logs["beat2"][-2000:])
