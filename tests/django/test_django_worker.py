"""A real Django project under ``celery-docket worker``: set-up, connections, on_commit.

The project (``project/``) is what Celery's "First steps with Django" makes, with the import
swapped: ``tasks.py`` imports a model at module level, the app reads ``django.conf:settings``
with the ``CELERY`` namespace and calls ``autodiscover_tasks()``.
"""

from __future__ import annotations

import json

import pytest

from tests.django.conftest import drive

pytestmark = pytest.mark.redis


def test_worker_sets_django_up_and_lists_discovered_tasks(env, start_worker) -> None:
    worker = start_worker(env, "-P", "threads", "-c", "2")
    banner = worker.text()
    for name in ("add_note", "count_notes", "probe_connection", "note_then_delay_on_commit"):
        assert f"  . notes.tasks.{name}" in banner
    assert "AppRegistryNotReady" not in banner
    assert drive(env, "count") == 0


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_no_task_finds_a_connection_left_by_the_previous_one(
    env, start_worker, pool, request
) -> None:
    start_worker(env, "-P", pool, "-c", "2")
    runs = drive(env, "probe", "12")
    assert [r["n"] for r in runs] == list(range(12))
    left_open = [r["n"] for r in runs if r["found_open"]]
    assert left_open == []  # Celery: 0 of 12
    if env.get("TEST_DB_ENGINE") == "postgresql":
        # and each task closed what it opened: the idle worker holds no connection
        server = request.getfixturevalue("postgres")
        name = env["TEST_DB_NAME"]
        held = server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'")
        assert held == "0"


def test_reused_connections_are_seen_when_reuse_is_asked_for(env, start_worker) -> None:
    """CELERY_DB_REUSE_MAX keeps connections for N tasks, as in Celery: the probe sees them."""
    start_worker({**env, "TEST_DB_REUSE_MAX": "100"}, "-P", "solo")
    runs = drive(env, "probe", "12")
    assert sum(r["found_open"] for r in runs) == 11


def test_pool_thread_that_ends_closes_its_connections(db_env) -> None:
    seen = drive(db_env, "thread_exit")
    assert seen == {"open_in_thread": True, "open_after": False}


def test_delay_on_commit_sends_after_commit_only(db_env) -> None:
    seen = drive(db_env, "on_commit_calls")
    assert seen["inside"] == 0
    assert seen["sent"] == [["delay", ["kept"]], ["apply_async", [["kept-async"]]]]
    assert "DjangoTask" in seen["task_class"]


def test_delay_on_commit_in_a_worker(env, start_worker) -> None:
    start_worker(env, "-P", "threads", "-c", "2")
    seen = drive(env, "on_commit_worker")
    assert "committed" in seen["texts"]
    assert "committed-after-commit" in seen["texts"]
    assert not any(t.startswith("rolled") for t in seen["texts"])


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_django_db_backend_writes_task_result_rows(env, start_worker, pool) -> None:
    env = {**env, "TEST_RESULT_BACKEND": "django-db", "TEST_RESULT_EXTENDED": "1"}
    env["TEST_TRACK_STARTED"] = "1"  # the STARTED write fills date_started
    worker = start_worker(env, "-P", pool, "-c", "2")
    assert ".> results:     django-db" in worker.text()
    seen = drive(env, "results")
    good, bad = seen["rows"][seen["good"]], seen["rows"][seen["bad"]]
    assert good["status"] == "SUCCESS"
    assert isinstance(json.loads(good["result"]), int)
    assert good["task_name"] == "notes.tasks.add_note"
    assert good["task_args"] == json.dumps("('row',)")
    assert good["task_kwargs"] == json.dumps("{}")
    assert good["worker"].startswith("celery@")
    assert good["date_created"] and good["date_done"] and good["date_started"]
    assert good["traceback"] is None
    assert bad["status"] == "FAILURE"
    assert json.loads(bad["result"])["exc_type"] == "ValueError"
    assert "ValueError: boom" in bad["traceback"]


def test_django_db_backend_without_the_app_is_refused(env, start_worker) -> None:
    env = {**env, "TEST_RESULT_BACKEND": "django-cache"}
    worker = start_worker(env, "-P", "threads", ready="")
    assert worker.proc.wait(60) != 0
    assert "result_backend 'django-cache' is not supported" in worker.text()


def test_forked_child_drops_inherited_connections_without_breaking_the_parents(db_env) -> None:
    seen = drive(db_env, "fork_child")
    assert seen == {"child_exit": 0, "parent_query_ok": True}


def test_django_db_from_a_command_that_did_not_set_django_up(env) -> None:
    """`celery-docket -A proj result ID` reads results without a worker's start-up."""
    import subprocess

    from tests.django.conftest import CLI, PROJECT

    done = subprocess.run(
        [CLI, "-A", "proj", "result", "no-such-task", "--timeout", "1"],
        cwd=PROJECT, env={**env, "TEST_RESULT_BACKEND": "django-db"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "AppRegistryNotReady" not in done.stderr + done.stdout
    assert "No result for no-such-task within 1 seconds" in done.stderr + done.stdout
