"""A chord of 200 header tasks under worker SIGKILLs still runs its body exactly once.

Two ``celery-docket worker`` processes (solo pool) share the header on a real redis-server;
body runs are counted in a ledger file outside that Redis. One worker is killed at a random
point of the header, or at the worst one: as it is about to send the body (after the chord
was seen complete, before the body's message reached Redis). The last header task's
message is then redelivered (late ack, 2 s lease) and must send the body: exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.fault, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
N = 200


class Workers:
    """Worker processes of one test, each in its own session; ended by their own pid."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed once passed on
        cmd = [sys.executable, "-m", "celery_docket.cli.main", "-A", "tests.fault.chord_kill_app"]
        cmd += ["worker", "-P", "solo", "-n", f"{name}@%h", "-l", "INFO"]
        self.procs[name] = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()  # the worker writes through its own copy

    def kill9(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def env(redis_server_url: str, prefix: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    values = {
        "CD_FAULT_BROKER": redis_server_url,
        "CD_FAULT_PREFIX": prefix,
        "CD_FAULT_LEDGER": str(tmp_path / "ledger.txt"),
    }
    yield {**os.environ, **values, "PYTHONPATH": str(ROOT)}


def _ledger(env: dict[str, str], kind: str) -> list[list[str]]:
    path = Path(env["CD_FAULT_LEDGER"])
    lines = path.read_text().splitlines() if path.exists() else []
    return [ln.split() for ln in lines if ln.startswith(kind + " ")]


def _client(env: dict[str, str]) -> Any:
    """An app of the test's own (a fresh one per test: its prefix is the test's) that sends
    the workers' tasks by name."""
    from celery_docket import Celery

    app = Celery("chordkill-client", broker=env["CD_FAULT_BROKER"], set_as_current=False)
    app.conf.docket_key_prefix = env["CD_FAULT_PREFIX"]
    return app


def _header(app: Any, ms: int) -> list[Any]:
    return [app.signature("ck.part", (i, ms)) for i in range(N)]


def _body(app: Any, kind: str) -> Any:
    from celery_docket import group

    if kind == "task body":
        return app.signature("ck.body", kwargs={"tag": "task"})
    if kind == "group body":
        return group(app.signature("ck.member", (1,)), app.signature("ck.member", (2,)))
    body = app.signature("ck.body", kwargs={"tag": "chain"})
    return body | app.signature("ck.plus", (3,))  # a chain body


def _check(env: dict[str, str], kind: str) -> None:
    total = sum(range(N))
    parts = {int(r[1]) for r in _ledger(env, "PART")}
    assert parts == set(range(N))
    if kind == "group body":
        members = sorted((r[1], r[2], r[3]) for r in _ledger(env, "MEMBER"))
        assert members == [("1", str(N), str(total)), ("2", str(N), str(total))], members
    else:
        bodies = [r[1:4] for r in _ledger(env, "BODY")]
        assert bodies == [[kind.split()[0], str(N), str(total)]], bodies
    if kind == "chain body":
        assert [r[1:3] for r in _ledger(env, "PLUS")] == [["3", str(total)]]


@pytest.mark.parametrize("kind", ["task body", "group body", "chain body"])
def test_body_once_when_a_worker_dies_sending_it(
    env: dict[str, str], tmp_path: Path, kind: str
) -> None:
    """The worker that completes the chord dies just before the body's message is sent."""
    from celery_docket import chord

    app = _client(env)
    first = {"task body": "ck.body", "group body": "ck.member", "chain body": "ck.body"}[kind]
    env = {**env, "CD_DIE_SENDING": f"{first}:{tmp_path / 'died'}"}
    workers = Workers(env, tmp_path)
    try:
        workers.start("a")
        workers.start("b")
        result = chord(_header(app, 2), app=app)(_body(app, kind))
        value = result.get(timeout=60)
        time.sleep(3)  # a second, late body send would show in the ledger by now
    finally:
        workers.stop_all()
        app.close()
    assert (tmp_path / "died").exists(), "no worker died sending the body"
    assert len(_ledger(env, "DYING")) == 1
    total = sum(range(N))
    expected = {"task body": total, "group body": [total + 1, total + 2]}
    assert value == expected.get(kind, total + 3)
    _check(env, kind)


@pytest.mark.parametrize("kind", ["task body", "group body"])
def test_body_once_when_a_worker_is_killed_mid_header(
    env: dict[str, str], tmp_path: Path, kind: str
) -> None:
    """SIGKILL one of two workers while the header runs; a third takes its place."""
    from celery_docket import chord

    app = _client(env)
    workers = Workers(env, tmp_path)
    try:
        workers.start("a")
        workers.start("b")
        result = chord(_header(app, 15), app=app)(_body(app, kind))
        deadline = time.monotonic() + 30
        while len(_ledger(env, "PART")) < N // 3:  # well inside the header
            assert time.monotonic() < deadline, "header did not start"
            time.sleep(0.02)
        workers.kill9("a")
        workers.start("c")
        value = result.get(timeout=60)
        time.sleep(3)  # let a redelivered header task finish: it must not send a second body
    finally:
        workers.stop_all()
        app.close()
    total = sum(range(N))
    assert value == (total if kind == "task body" else [total + 1, total + 2])
    _check(env, kind)
