"""Fixtures for the Django tests: a tiny real project (``project/``), migrated databases on
sqlite and on a real PostgreSQL, and ``celery-docket worker`` processes started and stopped
by pid. Everything Django runs in subprocesses, so this test process never sets Django up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.django.pg_server import PostgresServer

pytest.importorskip("django")
pytest.importorskip("django_celery_results")
pytest.importorskip("django_celery_beat")

PROJECT = Path(__file__).parent / "project"
CLI = str(Path(sys.executable).with_name("celery-docket"))


def _base_env() -> dict[str, str]:
    """No PYTHONPATH and no DJANGO_SETTINGS_MODULE: as a user starts a worker from the
    project directory, proj/celery.py sets the variable and the cwd must be importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DJANGO_"))}
    env.pop("PYTHONPATH", None)
    env["CELERY_DOCKET_DEBUG"] = "1"
    return env


def run_django(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    env = {"DJANGO_SETTINGS_MODULE": "proj.settings", **env}  # manage.py's default
    done = subprocess.run(
        [sys.executable, *args], cwd=PROJECT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"{args} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def drive(env: dict[str, str], scenario: str, *args: str) -> object:
    """Run a scenario of project/drive.py; its last printed line is JSON."""
    out = run_django(env, "drive.py", scenario, *args)
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if not PostgresServer.available():
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL (scripts/test.sh installs Debian's package)")
        pytest.skip("PostgreSQL is not installed")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return {"dir": tmp_path_factory.mktemp("djdb")}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_env(request: pytest.FixtureRequest, _migrated: dict, tmp_path: Path) -> dict[str, str]:
    """Environment naming a freshly migrated database of its own (copied from a template)."""
    env = _base_env()
    if request.param == "sqlite":
        template = Path(_migrated["dir"]) / "template.sqlite3"  # type: ignore[arg-type]
        if not template.exists():
            run_django({**env, "TEST_DB_NAME": str(template)}, "-m", "django", "migrate", "-v0")
        db = tmp_path / "db.sqlite3"
        shutil.copy(template, db)
        env["TEST_DB_NAME"] = str(db)
        return env
    server: PostgresServer = request.getfixturevalue("postgres")
    env.update(server.env())
    if not _migrated.get("pg"):
        run_django(env, "-m", "django", "migrate", "-v0")
        _migrated["pg"] = True
    name = f"t{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE DATABASE {name} TEMPLATE {server.dbname}", db="postgres")
    env["TEST_DB_NAME"] = name
    return env


@pytest.fixture
def env(db_env: dict[str, str], redis_server_url: str, prefix: str) -> dict[str, str]:
    """A migrated database, a real Redis and a key prefix of this test's own (its keys are
    deleted after the test by the ``prefix`` fixture)."""
    return {**db_env, "TEST_BROKER_URL": redis_server_url, "TEST_KEY_PREFIX": prefix}


class WorkerProcess:
    """``celery-docket -A proj worker`` in the project directory, stopped by its pid."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self._out = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [CLI, "-A", "proj", "worker", "-l", "INFO", *args],
            cwd=PROJECT, env=env, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if needle in text:
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not in the worker's output:\n{self.text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._out.close()
        return self.proc.returncode


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator:
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], *args: str, ready: str = " ready.") -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker{len(started)}.log", *args)
        started.append(worker)
        if ready:
            worker.wait_for(ready)
        return worker

    yield start
    for worker in started:
        worker.stop()
