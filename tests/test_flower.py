"""Real Flower (on real Celery) against our worker started with ``-E`` on a real Redis.

Flower is started as users start it, ``celery --broker=<our Redis> flower``, with no
celery_docket code in its process. It learns tasks from our events and workers from our
answers to Celery's inspect broadcasts; its HTTP API is what we assert on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisServer, free_port

pytest.importorskip("flower")
pytestmark = pytest.mark.redis

BIN = Path(sys.executable).parent

APP = """
from celery_docket import Celery

app = Celery("flowerapp", broker={url!r}, backend={url!r})
app.conf.task_send_sent_event = True


@app.task(name="fl.add")
def add(x, y):
    return x + y


@app.task(name="fl.boom")
def boom():
    raise ValueError("boom")
"""


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    server = RedisServer().start()
    url = server.url.rsplit("/", 1)[0] + "/2"
    (tmp_path / "flowerapp.py").write_text(textwrap.dedent(APP.format(url=url)))
    port = free_port()
    env = dict(os.environ, FLOWER_UNAUTHENTICATED_API="1")
    with open(tmp_path / "flower.log", "wb") as log:  # Flower writes through its own copy
        flower = subprocess.Popen(
            [str(BIN / "celery"), f"--broker={url}", "flower", f"--port={port}"]
            + ["--address=127.0.0.1"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: get(port, "/api/workers?status=1") is not None, 30, "Flower's API")
        yield url, port, tmp_path
    finally:
        stop(flower)
        server.stop()


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_flower_lists_our_tasks_and_worker(setup: tuple[str, int, Path], pool: str) -> None:
    url, port, tmp_path = setup
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    with open(tmp_path / "worker.log", "wb") as log:  # the worker writes through its own copy
        worker = subprocess.Popen(
            [str(BIN / "celery-docket"), "-A", "flowerapp", "worker", "-E", "-P", pool]
            + ["-c", "2", "-n", "flower@testhost", "-l", "INFO"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    node = "flower@testhost"
    try:
        # Flower's event capture is live once it has heard our heartbeat
        wait_for(lambda: get(port, "/api/workers?status=1").get(node), 30, "worker-online")
        sys.path.insert(0, str(tmp_path))
        sys.modules.pop("flowerapp", None)  # a module per test: each has its own Redis
        try:
            import flowerapp  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(tmp_path))
        good = [flowerapp.add.delay(i, i) for i in range(3)]
        bad = flowerapp.boom.delay()
        assert [r.get(timeout=20) for r in good] == [0, 2, 4]
        with pytest.raises(ValueError):
            bad.get(timeout=20)
        flowerapp.add.apply_async((1, 1), countdown=300)  # parked: ready count stays 0

        def states() -> dict[str, Any] | None:
            tasks = get(port, "/api/tasks")
            ids = [r.id for r in good] + [bad.id]
            done = all(tasks.get(i, {}).get("state") in ("SUCCESS", "FAILURE") for i in ids)
            return tasks if done else None

        tasks = wait_for(states, 20, "the task events in Flower")
        for r, i in zip(good, range(3)):
            t = tasks[r.id]
            assert (t["state"], t["name"], t["result"], t["worker"]) == (
                "SUCCESS",
                "fl.add",
                str(i * 2),
                node,
            )
            assert t["runtime"] is not None and t["received"] and t["started"]
        failed = tasks[bad.id]
        assert (failed["state"], failed["exception"]) == ("FAILURE", "ValueError('boom')")
        assert "ValueError: boom" in failed["traceback"]
        assert get(port, "/api/tasks?state=FAILURE").keys() == {bad.id}

        workers = wait_for(
            lambda: get(port, "/api/workers?refresh=1").get(node), 20, "inspect replies"
        )
        assert "fl.add" in workers["registered"] and "fl.boom" in workers["registered"]
        assert [q["name"] for q in workers["active_queues"]] == ["celery"]
        assert workers["stats"]["pid"] == worker.pid
        assert workers["stats"]["pool"]["max-concurrency"] == 2

        # Flower's broker view runs LLEN on the queue names: our ready work is in a stream
        # under {cd:celery}, never in a list named "celery", so Flower shows 0 there
        lengths = get(port, "/api/queues/length")["active_queues"]
        assert lengths == [{"name": "celery", "messages": 0}]
    finally:
        stop(worker)
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
    # after a graceful stop the worker-offline event makes Flower mark it offline
    wait_for(lambda: get(port, "/api/workers?status=1").get(node) is False, 10, "offline")
