"""Worker log lines in Celery's formats, from a real worker process (real redis-server)."""

from __future__ import annotations

import os
import re
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

from celery_docket import Celery
from celery_docket.utils.log import get_task_logger

app = Celery("logs")
app.conf.docket_key_prefix = os.environ["LOG_PREFIX"]
if os.environ.get("LOG_FORMATS"):
    app.conf.worker_log_format = "W|%(levelname)s|%(processName)s|%(message)s"
    app.conf.worker_task_log_format = "T|%(task_name)s|%(task_id)s|%(message)s"
logger = get_task_logger(__name__)


@app.task(name="logs.hello")
def hello():
    logger.warning("hello from the task")
    return "ok"
"""


def _run(
    tmp_path: Path, url: str, prefix: str, pool: str, formats: bool = False
) -> tuple[str, str]:
    write(tmp_path, {"cdt_logs.py": APP})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env["LOG_PREFIX"] = prefix
    if formats:
        env["LOG_FORMATS"] = "1"
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*command(), "-A", "cdt_logs", "-b", url, "worker", "-P", pool, "-c", "1",
             "-l", "INFO"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    app = Celery("logs-sender", broker=url, set_as_current=False)
    app.conf.docket_key_prefix = prefix
    try:
        result = app.send_task("logs.hello")
        assert result.get(timeout=30) == "ok", log_path.read_text()
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        app.close()
    return log_path.read_text(), result.id


@pytest.mark.parametrize(
    ("pool", "process"), [("threads", "MainProcess"), ("prefork", "ForkPoolWorker-1")]
)
def test_task_logger_lines_have_celerys_prefix(
    pool: str, process: str, tmp_path: Path, redis_server_url: str, prefix: str
) -> None:
    text, task_id = _run(tmp_path, redis_server_url, prefix, pool)
    pattern = (
        rf"^\[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d+: WARNING/{process}\] "
        rf"logs\.hello\[{task_id}\]: hello from the task$"
    )
    assert re.search(pattern, text, re.M), text
    assert re.search(rf"INFO/{process}\] Task logs\.hello\[{task_id}\] succeeded", text), text
    assert text.count("received SIGINT") == 1, text


def test_worker_log_formats_are_honoured(
    tmp_path: Path, redis_server_url: str, prefix: str
) -> None:
    text, task_id = _run(tmp_path, redis_server_url, prefix, "threads", formats=True)
    assert f"T|logs.hello|{task_id}|hello from the task" in text, text
    assert "W|INFO|MainProcess|" in text, text
