"""Ctrl-C twice (or SIGQUIT) stops a worker at once: Celery's cold shutdown.

Each test runs a real ``celery-docket worker`` process on a real redis-server, gives it a
task that sleeps 30 s, and signals the worker's process group as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from celery_docket import Celery
from tests.test_cli import command, write

pytestmark = pytest.mark.redis

APP = """
import os
import time
from pathlib import Path

from celery_docket import Celery

app = Celery("cold")
app.conf.docket_key_prefix = os.environ["COLD_PREFIX"]


@app.task(name="cold.sleepy")
def sleepy(marker):
    Path(marker).write_text("started")
    time.sleep(30)
    return "slept"
"""


def _start(tmp_path: Path, url: str, prefix: str, pool: str) -> tuple[subprocess.Popen, Path]:
    write(tmp_path, {"cdt_cold.py": APP})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env["COLD_PREFIX"] = prefix
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*command(), "-A", "cdt_cold", "-b", url, "worker", "-P", pool, "-c", "1",
             "-l", "INFO"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return proc, log_path


def _running_task(tmp_path: Path, url: str, prefix: str, proc: subprocess.Popen) -> None:
    app = Celery("cold-sender", broker=url, set_as_current=False)
    app.conf.docket_key_prefix = prefix
    marker = tmp_path / "started"
    app.send_task("cold.sleepy", args=[str(marker)])
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()
        assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
        time.sleep(0.05)
    app.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.mark.parametrize("pool", ["solo", "threads", "prefork"])
def test_second_ctrl_c_is_a_cold_shutdown(
    pool: str, tmp_path: Path, redis_server_url: str, prefix: str
) -> None:
    proc, log_path = _start(tmp_path, redis_server_url, prefix, pool)
    try:
        _running_task(tmp_path, redis_server_url, prefix, proc)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        time.sleep(1.0)
        assert proc.poll() is None, "the first Ctrl-C must wait for the running task"
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(10)
        assert time.monotonic() - started < 10
    finally:
        _stop(proc)
    text = log_path.read_text()
    assert code != 0, text
    assert "cold shutdown" in text, text
    assert text.count("received SIGINT, shutting down gracefully") == 1, text
    assert "Traceback" not in text, text


def test_sigquit_is_a_cold_shutdown(tmp_path: Path, redis_server_url: str, prefix: str) -> None:
    proc, log_path = _start(tmp_path, redis_server_url, prefix, "threads")
    try:
        _running_task(tmp_path, redis_server_url, prefix, proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGQUIT)
        code = proc.wait(10)
        assert time.monotonic() - started < 10
    finally:
        _stop(proc)
    assert code != 0 and "cold shutdown" in log_path.read_text()
