"""``celery-docket top``: the rendering of a hand-made sample, the rates between two
samples, a sample read from a real Redis, and the real command under tmux while a worker
runs tasks (read back with ``tmux capture-pane``)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("rich")
from rich.console import Console

from celery_docket import Celery
from celery_docket.top import Sample, read_sample, with_rates
from celery_docket.top.render import render, sparkline
from celery_docket.top.sampler import QueueRow, WorkerRow
from tests.redis_server import RedisServer

BIN = Path(sys.executable).parent


def text_of(renderable: object, width: int = 140) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def a_sample(at: float, added: int, ready: int, processed: int) -> Sample:
    queues = [
        QueueRow("celery", ready, 3, 1, 2, 4, ["w1@h"], added=added),
        QueueRow("emails", 0, 0, 0, 0, 0, [], added=None),
    ]
    active = [
        {"id": "abcdef0123456789", "name": "proj.resize", "time_start": at - 75},
        {"id": "0011223344556677", "name": "proj.send", "time_start": at - 2},
    ]
    workers = [WorkerRow("w1@h", "prefork", 4, processed, 3700, 0.4, ["celery"], active)]
    return Sample(at, queues, workers, broker="redis://127.0.0.1:6379/0")


def test_render_shows_queues_workers_and_sparkline() -> None:
    sample = a_sample(1000.0, 100, 7, 50)
    out = text_of(render(sample, [0.0, 5.0, 10.0]))
    row = next(line for line in out.splitlines() if line.startswith("celery "))
    assert row.split()[:6] == ["celery", "7", "3", "1", "2", "4"]
    assert "emails" in out and "w1@h" in out
    worker = next(line for line in out.splitlines() if line.startswith("w1@h"))
    assert worker.split()[:5] == ["w1@h", "prefork", "2/4", "50", "1h01m"]
    assert "proj.resize[abcdef01] 1m15s" in out and "proj.send[00112233] 2s" in out
    assert "▁▅█" in out
    assert "ready 7  parked 3  running 2  dead 4" in out


def test_rates_come_from_two_samples() -> None:
    first = a_sample(1000.0, added=100, ready=7, processed=50)
    second = with_rates(a_sample(1002.0, added=120, ready=11, processed=66), first)
    celery, emails = second.queues
    assert celery.in_rate == 10.0  # 20 added in 2 s
    # done = added - still in the stream: (120 - 14) - (100 - 10) = 16 in 2 s
    assert celery.done_rate == 8.0
    assert emails.in_rate is None and second.throughput == 8.0
    out = text_of(render(second, [8.0]))
    row = next(line for line in out.splitlines() if line.startswith("celery "))
    assert row.split()[6:8] == ["10.0", "8.0"]


def test_throughput_falls_back_on_processed_counts() -> None:
    first, second = a_sample(10.0, 0, 0, 50), a_sample(11.0, 0, 0, 53)
    for s in (first, second):
        for q in s.queues:
            q.added = None
    assert with_rates(second, first).throughput == 3.0


def test_a_redis_error_keeps_the_last_screen_and_says_why() -> None:
    from celery_docket.top import Sampler, _frame

    sampler = Sampler(Celery("t", broker="memory://top-error", set_as_current=False))

    def down() -> Sample:
        raise ConnectionError("Connection refused")

    sampler.sample = down  # type: ignore[method-assign]
    assert "cannot read Redis (ConnectionError: Connection refused)" in text_of(
        _frame(sampler, render)
    )
    sampler.last = a_sample(1000.0, 100, 7, 50)
    out = text_of(_frame(sampler, render))
    assert "cannot read Redis" in out and "w1@h" in out


def test_sparkline_scales_to_the_largest_value() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([1, 2, 4, 8]) == "▂▃▅█"
    assert len(sparkline(range(100), width=10)) == 10


@pytest.mark.redis
def test_read_sample_counts_ready_and_parked(redis_server_url: str, prefix: str) -> None:
    tag = uuid.uuid4().hex[:6]
    app = Celery(f"top{tag}", broker=redis_server_url, set_as_current=False)
    app.conf.docket_key_prefix = prefix

    @app.task(name="top.t")
    def t() -> None:
        return None

    for _ in range(5):
        t.delay()
    t.apply_async(countdown=300)
    sample = read_sample(app, ["celery"])
    (q,) = sample.queues
    assert (q.name, q.ready, q.parked, q.running, q.dead) == ("celery", 5, 1, 0, 0)
    assert q.added == 5  # Redis 7's entries-added
    assert sample.workers == []


APP = """
import time
from celery_docket import Celery

app = Celery("topapp", broker={url!r})


@app.task(name="topapp.slow")
def slow():
    time.sleep(0.25)
"""


@pytest.mark.redis
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_top_under_tmux_shows_the_queue_while_a_worker_runs(tmp_path: Path) -> None:
    server = RedisServer().start()
    url = server.url
    (tmp_path / "topapp.py").write_text(textwrap.dedent(APP.format(url=url)))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    session = f"cdtop{uuid.uuid4().hex[:8]}"
    worker = None
    try:
        sys.path.insert(0, str(tmp_path))
        sys.modules.pop("topapp", None)
        try:
            import topapp  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(tmp_path))
        for _ in range(60):
            topapp.slow.delay()
        worker = subprocess.Popen(
            [str(BIN / "celery-docket"), "-A", "topapp", "worker", "-P", "threads", "-c", "2"]
            + ["-n", "topw@h", "-l", "WARNING"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        command = (
            f"cd {tmp_path} && PYTHONPATH={tmp_path} {BIN / 'celery-docket'} -A topapp top "
            "--iterations 12 --no-screen; sleep 60"
        )
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40", command],
            check=True,
        )
        seen: list[str] = []
        end = time.monotonic() + 30
        while time.monotonic() < end:
            pane = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows = [line for line in pane.splitlines() if line.startswith("celery ")]
            if rows and "topw@h" in pane and "topapp.slow[" in pane:
                seen.append(pane)
                if len(seen) >= 2 and seen[-1] != seen[0]:
                    break
            time.sleep(0.5)
        assert len(seen) >= 2, f"top never showed the busy worker; last screen:\n{pane}"
        first, last = seen[0], seen[-1]
        ready = [
            int(line.split()[1])
            for line in (first, last)
            for line in line.splitlines()
            if line.startswith("celery ")
        ]
        assert 0 < ready[0] < 60 and ready[-1] <= ready[0]  # the queue drains as it runs
        assert "topw@h" in last and "threads" in last and "/2" in last
        assert "tasks/s" in last
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        if worker is not None:
            worker.terminate()
            worker.wait(15)
        server.stop()
