"""Prometheus metrics with the real prometheus-client: the worker's endpoint scraped over
loopback and parsed with ``prometheus_client.parser``; counters equal the tasks run."""

from __future__ import annotations

import time
import urllib.request
import uuid
from typing import Any

import pytest

from celery_docket import Celery
from celery_docket.worker import WorkController

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families

from celery_docket.contrib import prometheus


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], metric: str, **labels: str) -> float:
    """Sum of the samples of ``metric`` whose labels include ``labels``."""
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == metric and all(dict(ls).get(k) == want for k, want in labels.items())
    )


@pytest.mark.redis
def test_worker_counters_equal_the_tasks_run(redis_server_url: str, prefix: str) -> None:
    tag = uuid.uuid4().hex[:6]
    app = Celery(f"m{tag}", broker=redis_server_url, set_as_current=False)
    app.conf.docket_key_prefix = prefix

    @app.task(name=f"m{tag}.ok")
    def ok(x: int) -> int:
        return x

    @app.task(name=f"m{tag}.bad")
    def bad() -> None:
        raise KeyError("no")

    @app.task(name=f"m{tag}.again", bind=True, max_retries=1)
    def again(self: Any) -> str:
        if not self.request.retries:
            raise self.retry(countdown=0)
        return "done"

    server = prometheus.serve(app, 0, "127.0.0.1")
    try:
        results = [ok.delay(i) for i in range(5)] + [bad.delay(), bad.delay(), again.delay()]
        later = ok.apply_async((9,), countdown=60)  # parked, never run here
        w = WorkController(app, pool="solo", setup_logging=False).start_in_thread()
        try:
            end = time.monotonic() + 20
            while not all(r.ready() for r in results):
                assert time.monotonic() < end
                time.sleep(0.05)
            samples = scrape(server.port)
        finally:
            w.stop()
        assert later.state == "PENDING"
        n = f"m{tag}"
        assert value(samples, "celery_task_sent_total", name=f"{n}.ok") == 6
        assert value(samples, "celery_task_sent_total", name=f"{n}.bad") == 2
        assert value(samples, "celery_task_received_total", name=f"{n}.ok") == 5
        assert value(samples, "celery_task_started_total", name=f"{n}.ok") == 5
        assert value(samples, "celery_task_succeeded_total", name=f"{n}.ok") == 5
        assert value(samples, "celery_task_failed_total", name=f"{n}.ok") == 0
        assert (
            value(samples, "celery_task_failed_total", name=f"{n}.bad", exception="KeyError") == 2
        )
        assert value(samples, "celery_task_started_total", name=f"{n}.again") == 2
        assert value(samples, "celery_task_retried_total", name=f"{n}.again") == 1
        assert value(samples, "celery_task_succeeded_total", name=f"{n}.again") == 1
        assert value(samples, "celery_task_runtime_count", name=f"{n}.ok") == 5
        assert (
            value(samples, "celery_task_received_total", name=f"{n}.ok", queue_name="celery") == 5
        )
        assert value(samples, "celery_task_revoked_total", name=f"{n}.ok") == 0
        assert value(samples, "celery_worker_up") >= 1
        assert value(samples, "celery_queue_length", queue_name="celery") == 0
        assert value(samples, "celery_docket_parked", queue_name="celery") == 1
        assert value(samples, "celery_docket_dead_letters", queue_name="celery") == 0
        assert ("celery_docket_queue_depth", (("queue_name", "celery"),)) in samples
    finally:
        server.close()
        prometheus.uninstall()


def test_cli_declares_metrics_port() -> None:
    from click.testing import CliRunner

    from celery_docket.cli.main import celery

    out = CliRunner().invoke(celery, ["worker", "--help"]).output
    assert "--metrics-port" in out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.redis
def test_prefork_cli_worker_serves_the_childrens_counts(
    redis_server_url: str, prefix: str, tmp_path: Any
) -> None:
    """``celery-docket worker -P prefork --metrics-port N``: tasks run in the children, the
    parent's endpoint sums them (prometheus-client's multiprocess directory)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    port = _free_port()
    env = {
        **os.environ,
        "CD_TEST_BROKER": redis_server_url,
        "CD_TEST_PREFIX": prefix,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "CELERY_DOCKET_METRICS_ADDR": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery_docket.cli.main", "-A", "tests.prefork_celery_app"]
        + ["worker", "-P", "prefork", "-c", "2", "--metrics-port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()  # the worker writes through its own copy
    client = Celery("client", broker=redis_server_url, set_as_current=False)
    client.conf.docket_key_prefix = prefix
    try:
        pids = {client.send_task("pf.pid").get(timeout=30) for _ in range(6)}
        assert proc.pid not in pids
        samples = scrape(port)
        assert value(samples, "celery_task_succeeded_total", name="pf.pid") == 6
        assert value(samples, "celery_task_received_total", name="pf.pid") == 6
        assert value(samples, "celery_task_runtime_count", name="pf.pid") == 6
        assert value(samples, "celery_worker_up") >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        client.close()
        log.close()
