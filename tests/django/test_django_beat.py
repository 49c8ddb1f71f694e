"""django-celery-beat's ``DatabaseScheduler`` rows, run as our perpetual schedule.

Rows are made and edited as the admin does (model saves) in a separate process, while a
``celery-docket worker`` runs them; ticks are counted from the rows the task writes.
"""

from __future__ import annotations

import time

import pytest

from tests.django.conftest import drive

pytestmark = pytest.mark.redis

SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


def _wait(env, check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        state = drive(env, "beat_state")
        if check(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


@pytest.mark.parametrize("how", ["setting", "--scheduler"])
def test_database_rows_tick_and_follow_admin_edits(env, start_worker, how) -> None:
    env = {**env, "TEST_BEAT_INTERVAL": "1"}
    drive(env, "beat_rows", "interval", "clocked")
    if how == "setting":
        start_worker({**env, "TEST_BEAT_SCHEDULER": SCHEDULER}, "-P", "threads", "-c", "2")
    else:
        start_worker(env, "-P", "threads", "-c", "2", "--scheduler", SCHEDULER)
    state = _wait(env, lambda s: s["ticks"].get("tick-a", 0) >= 3 and "tick-once" in s["ticks"])
    assert state["ticks"].get("tick-a", 0) >= 3
    assert state["ticks"].get("tick-once") == 1
    assert "tick-off" not in state["ticks"]
    once = state["rows"]["just-once"]
    assert once == {"enabled": False, "total_run_count": 1, "last_run_at": True}

    edited = drive(env, "beat_edit")
    state = _wait(env, lambda s: s["ticks"].get("tick-b", 0) >= 2)
    assert state["ticks"].get("tick-b", 0) >= 2  # a row added in the admin runs
    stopped_at = state["ticks"]["tick-a"]
    # the parked tick, and those within one re-read interval (1 s here), may still run
    assert stopped_at <= edited["ticks"]["tick-a"] + 3
    time.sleep(2.5)
    state = drive(env, "beat_state")
    assert state["ticks"]["tick-a"] == stopped_at  # the switched-off row runs no more
    assert state["ticks"].get("tick-once") == 1
    assert "tick-off" not in state["ticks"]
    rows = state["rows"]
    # one run per tick is counted; the admin's save (a read, then a write of every field)
    # can lose a count made in between, as with django-celery-beat
    assert stopped_at - 1 <= rows["every-second"]["total_run_count"] <= stopped_at
    # (django-celery-beat's save() clears last_run_at of a disabled row)
    assert rows["added-later"]["last_run_at"]
    # a running row's count lands just after its task's note: at most one behind
    ticks_b = state["ticks"]["tick-b"]
    assert ticks_b - 1 <= rows["added-later"]["total_run_count"] <= ticks_b


def test_beat_process_runs_database_rows(env, start_worker) -> None:
    """`celery-docket beat -S ...` schedules the rows; a worker runs them."""
    env = {**env, "TEST_BEAT_INTERVAL": "1"}
    drive(env, "beat_rows", "interval")
    start_worker(env, "-P", "threads", "-Q", "celery")
    import subprocess

    from tests.django.conftest import CLI, PROJECT

    beat = subprocess.Popen(
        [CLI, "-A", "proj", "beat", "-S", SCHEDULER, "-l", "INFO"], cwd=PROJECT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        state = _wait(env, lambda s: s["ticks"].get("tick-a", 0) >= 2)
        assert state["ticks"].get("tick-a", 0) >= 2
    finally:
        beat.terminate()
        beat.wait(30)


def test_a_row_that_cannot_be_honoured_is_refused_at_start(env, start_worker) -> None:
    drive(env, "beat_rows", "solar")
    worker = start_worker({**env, "TEST_BEAT_SCHEDULER": SCHEDULER}, "-P", "threads", ready="")
    assert worker.proc.wait(60) != 0
    assert "'at-sunset' (django_celery_beat) cannot be run: solar schedules" in worker.text()


def test_other_scheduler_classes_are_still_refused(env, start_worker) -> None:
    worker = start_worker(env, "-P", "threads", "--scheduler", "myproj.sched:Custom", ready="")
    assert worker.proc.wait(60) != 0
    assert "--scheduler myproj.sched:Custom cannot be used with celery-docket" in worker.text()
