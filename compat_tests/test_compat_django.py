"""A real Django project (tests/django/project) on real Celery and on celery_docket.

The same project, the same client script and the same checks: for the oracle its two
``from celery_docket import`` lines read ``from celery import``, its worker is ``celery -A
proj worker`` (and ``celery beat -S DatabaseScheduler`` for the periodic tasks, which our
workers schedule themselves). Each scenario runs on sqlite, then on a real PostgreSQL;
workers are processes on a real Redis, so the in-process ``memory://`` system has nothing
to run them on and is skipped.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.django.pg_server import PostgresServer

pytest.importorskip("django")
pytest.importorskip("django_celery_results")
pytest.importorskip("django_celery_beat")

PROJECT = Path(__file__).resolve().parent.parent / "tests" / "django" / "project"
BIN = Path(sys.executable).parent
SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


class Project:
    """A copy of the project for one system, with its database, Redis and processes."""

    def __init__(
        self, system: SimpleNamespace, root: Path, redis_url: str, pg: PostgresServer | None
    ) -> None:
        self.oracle = system.name == "celery"
        self.root = root
        shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("__pycache__"))
        if self.oracle:
            for rel in ("proj/celery.py", "notes/tasks.py"):
                path = root / rel
                path.write_text(
                    path.read_text().replace("from celery_docket import", "from celery import")
                )
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DJANGO_", "CELERY_"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="proj.settings",
            PYTHONPATH=str(root),
            TEST_DB_NAME=str(root / "db.sqlite3"),
            TEST_BROKER_URL=redis_url,
            TEST_KEY_PREFIX=uuid.uuid4().hex[:10],
            TEST_QUEUE=f"dj{uuid.uuid4().hex[:10]}",
            TEST_BEAT_INTERVAL="1",
        )
        if self.oracle:
            env["TEST_RESULT_BACKEND"] = redis_url
        if pg is not None:  # a database of its own on the shared cluster
            env.update(pg.env(), TEST_DB_NAME=f"t{uuid.uuid4().hex[:12]}")
            pg.psql(f"CREATE DATABASE {env['TEST_DB_NAME']}", db="postgres")
        self.env = env
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.run("-m", "django", "migrate", "-v0")

    def run(self, *args: str, extra: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=self.root, env={**self.env, **(extra or {})},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def drive(self, scenario: str, *args: str, extra: dict[str, str] | None = None) -> object:
        return json.loads(
            self.run("drive.py", scenario, *args, extra=extra).strip().splitlines()[-1]
        )

    def start(self, command: str, *args: str, extra: dict[str, str] | None = None) -> None:
        cli = BIN / ("celery" if self.oracle else "celery-docket")
        log = self.root / f"{command}{len(self.procs)}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(cli), "-A", "proj", command, "-l", "INFO", *args], cwd=self.root,
                env={**self.env, **(extra or {})}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.procs.append((proc, log))
        if command == "worker":
            deadline = time.monotonic() + 60
            while " ready." not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)

    def stop(self) -> None:
        for proc, _log in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer | None]:
    if not PostgresServer.available():
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL (scripts/test.sh installs Debian's package)")
        yield None
        return
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def projects(system, tmp_path, request, postgres) -> Iterator[list[Callable[[], Project]]]:
    """The project on sqlite, then on PostgreSQL (one scenario id per system, as the
    compatibility matrix counts them): each item makes one, stopped after the test."""
    if system.name != "celery" and getattr(system, "backend", "") != "redis":
        pytest.skip("a worker process cannot reach the in-process memory:// broker")
    url = request.getfixturevalue("redis_server_url")
    made: list[Project] = []

    def maker(db: str) -> Callable[[], Project]:
        def make() -> Project:
            pg = postgres if db == "postgresql" else None
            made.append(Project(system, tmp_path / f"project-{db}", url, pg))
            return made[-1]

        return make

    try:
        yield [maker("sqlite")] + ([maker("postgresql")] if postgres is not None else [])
    finally:
        for project in made:
            project.stop()


@pytest.mark.redis
def test_django_models_in_tasks_and_connections_closed_between_tasks(projects) -> None:
    for make in projects:
        project = make()
        project.start("worker", "-P", "prefork", "-c", "2")
        runs = project.drive("probe", "12")
        assert [r["n"] for r in runs] == list(range(12))
        assert [r["n"] for r in runs if r["found_open"]] == []  # 0 of 12
        project.stop()


@pytest.mark.redis
def test_django_delay_on_commit(projects) -> None:
    for make in projects:
        project = make()
        seen = project.drive("on_commit_calls")
        assert seen["inside"] == 0
        assert seen["sent"] == [["delay", ["kept"]], ["apply_async", [["kept-async"]]]]
        assert "DjangoTask" in seen["task_class"]
        project.start("worker", "-P", "threads", "-c", "2")
        seen = project.drive("on_commit_worker")
        assert "committed-after-commit" in seen["texts"]
        assert not any(t.startswith("rolled") for t in seen["texts"])
        project.stop()


@pytest.mark.redis
def test_django_db_result_rows(projects) -> None:
    for make in projects:
        project = make()
        extra = {"TEST_RESULT_BACKEND": "django-db", "TEST_RESULT_EXTENDED": "1"}
        project.start("worker", "-P", "threads", "-c", "2", extra=extra)
        seen = project.drive("results", extra=extra)
        good, bad = seen["rows"][seen["good"]], seen["rows"][seen["bad"]]
        assert {k: good[k] for k in ("status", "task_name", "task_args", "task_kwargs")} == {
            "status": "SUCCESS",
            "task_name": "notes.tasks.add_note",
            "task_args": json.dumps("('row',)"),
            "task_kwargs": json.dumps("{}"),
        }
        assert good["worker"].startswith("celery@") and good["date_done"]
        assert bad["status"] == "FAILURE"
        assert json.loads(bad["result"])["exc_type"] == "ValueError"
        assert "ValueError: boom" in bad["traceback"]
        project.stop()


@pytest.mark.redis
def test_django_celery_beat_rows_run(projects) -> None:
    for make in projects:
        project = make()
        extra = {"TEST_BEAT_SCHEDULER": SCHEDULER}
        project.drive("beat_rows", "interval", "clocked")
        project.start("worker", "-P", "threads", "-c", "2", extra=extra)
        if project.oracle:
            project.start("beat", "-S", SCHEDULER, extra=extra)
        deadline = time.monotonic() + 40
        while True:
            state = project.drive("beat_state")
            ticks = state["ticks"]
            if (
                ticks.get("tick-a", 0) >= 3 and "tick-once" in ticks
            ) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert ticks.get("tick-a", 0) >= 3
        assert ticks.get("tick-once") == 1
        assert "tick-off" not in ticks
        assert state["rows"]["every-second"]["last_run_at"]
        # Celery's scheduler saves the counts now and then (beat_sync_every), ours after each run
        # (and switches a one-off row off only once it has saved its count; ours at once)
        assert state["rows"]["every-second"]["total_run_count"] >= 1
        project.stop()
