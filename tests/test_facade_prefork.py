"""`celery-docket worker -P prefork` on a real redis-server: children, limits, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from celery_docket import Celery
from celery_docket.exceptions import TimeLimitExceeded, WorkerLostError

pytestmark = pytest.mark.redis


def test_prefork_worker_recycles_enforces_time_limit_and_stops_cleanly(
    redis_server_url: str, prefix: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CD_TEST_BROKER": redis_server_url,
        "CD_TEST_PREFIX": prefix,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "CD_TEST_PROCESS_LOG": str(tmp_path / "processes.log"),
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery_docket.cli.main",
            "-A",
            "tests.prefork_celery_app",
            "worker",
            "-P",
            "prefork",
            "-c",
            "2",
            "--max-tasks-per-child",
            "3",
            "--time-limit",
            "1",
            "-l",
            "INFO",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = Celery("client", broker=redis_server_url, set_as_current=False)
    client.conf.docket_key_prefix = prefix
    try:
        pids = {client.send_task("pf.pid").get(timeout=30) for _ in range(12)}
        assert proc.pid not in pids
        assert len(pids) >= 4, f"children were not recycled after 3 tasks: {pids}"
        t0 = time.monotonic()
        r = client.send_task("pf.sleep", (10,))
        with pytest.raises(TimeLimitExceeded):
            r.get(timeout=30)
        assert time.monotonic() - t0 < 8
        assert r.state == "FAILURE"
        assert client.send_task("pf.early").get(timeout=30) == "acked before running"
        # a task that kills its process: retried up to max_deliveries, then FAILURE
        with pytest.raises(WorkerLostError, match="delivered 3 times"):
            client.send_task("pf.die").get(timeout=60)
        assert client.send_task("pf.pid").get(timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait(10)
        client.close()
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert code == 0, output[-3000:]
    # every child announced itself; those that exited on their own (recycled, or at the
    # SIGTERM) said so, with their exit code; the ones killed by the time limit or os._exit
    # could not
    events = [line.split() for line in (tmp_path / "processes.log").read_text().splitlines()]
    started = {pid for event, pid, *_ in events if event == "init"}
    stopped = {pid for event, pid, *_ in events if event == "shutdown"}
    assert stopped and stopped <= started, events
    assert len(stopped) >= 3, events  # >= 2 recycled after 3 tasks, 2 stopped at SIGTERM
    assert all(rest == ["0"] for event, _pid, *rest in events if event == "shutdown"), events
    assert "Hard time limit (1.0s) exceeded for pf.sleep" in output or (
        "Hard time limit (1s) exceeded for pf.sleep" in output
    ), output[-3000:]
