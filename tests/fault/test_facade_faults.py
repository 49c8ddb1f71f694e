"""Beat and chords under worker kills, through the real CLI on a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.fault, pytest.mark.redis]


class Workers:
    """celery-docket worker processes started (and ended) by pid."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: str = "worker") -> None:
        """Start ``celery-docket worker`` (solo pool) or ``celery-docket beat``."""
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed once passed on
        pool = ["-P", "solo", "-n", f"{name}@%h"] if command == "worker" else []
        self.procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery_docket.cli.main",
                "-A",
                "tests.fault.celery_app",
                command,
                *pool,
                "-l",
                "INFO",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the process writes through its own copy

    def kill9(self, name: str) -> float:
        t = time.time()
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(10)
        return t

    def stop_all(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                codes[name] = proc.wait(10)
        return codes


def _ledger(env: dict[str, str], kind: str) -> list[list[str]]:
    path = Path(env["CD_FAULT_LEDGER"])
    if not path.exists():
        return []
    return [ln.split() for ln in path.read_text().splitlines() if ln.startswith(kind)]


def test_three_workers_one_second_beat_with_kills(env: dict[str, str], tmp_path: Path) -> None:
    """Per tick exactly one run outside kill windows; never two runs of one tick."""
    env = {**env, "CD_FAULT_TICK": "1.0"}
    workers = Workers(env, tmp_path)
    kills: list[float] = []
    try:
        for name in ("a", "b", "c"):
            workers.start(name)
        time.sleep(10)
        kills.append(workers.kill9("a"))
        workers.start("a2")
        time.sleep(10)
        kills.append(workers.kill9("b"))
        workers.start("b2")
        time.sleep(10)
    finally:
        codes = workers.stop_all()
    ticks = sorted(float(r[2]) for r in _ledger(env, "TICK"))
    assert len(ticks) >= 20, ticks
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    # never two runs of one tick (a second run within the same interval)
    assert min(gaps) > 0.9, gaps
    # no missing tick except around a kill (the lease, 2 s, plus one interval)
    for a, b in zip(ticks, ticks[1:]):
        if b - a > 1.5:
            assert any(a - 0.5 <= k <= b for k in kills), (a, b, kills)
            assert b - a < 2 + 1 + 1.5, (a, b)
    assert all(code == 0 for name, code in codes.items() if name not in ("a", "b")), codes


def test_chord_of_200_fires_body_once_under_kills(env: dict[str, str], tmp_path: Path) -> None:
    sys.path.insert(0, env["PYTHONPATH"])
    os.environ.update(
        {k: env[k] for k in ("CD_FAULT_BROKER", "CD_FAULT_PREFIX", "CD_FAULT_LEDGER")}
    )
    from celery_docket import chord
    from tests.fault import celery_app

    workers = Workers(env, tmp_path)
    try:
        for name in ("a", "b", "c"):
            workers.start(name)
        result = chord(celery_app.part.s(i, 40) for i in range(200))(celery_app.body.s())
        time.sleep(1.5)
        workers.kill9("a")
        workers.start("a2")
        time.sleep(1.5)
        workers.kill9("b")
        workers.start("b2")
        assert result.get(timeout=90) == sum(range(200))
        time.sleep(3)  # let any redelivered header task finish
    finally:
        workers.stop_all()
    bodies = _ledger(env, "BODY")
    assert len(bodies) == 1, bodies
    assert bodies[0][1:3] == ["200", str(sum(range(200)))]
    parts = {int(r[1]) for r in _ledger(env, "PART")}
    assert parts == set(range(200))
