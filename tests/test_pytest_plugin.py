"""celery_docket.contrib.pytest: test files written for Celery's plugin, after the import swap.

Each scenario is a small test suite run by ``pytester`` in its own process. Where the
scenario makes sense on Celery too, the same file is also run against Celery's plugin with
the imports put back, and both runs must give the same outcomes.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

OURS = ("celery_docket", "celery_docket.contrib.pytest", "celery_docket.signals")
CELERY = ("celery", "celery.contrib.pytest", "celery.signals")


def suite(template: str, flavour: tuple[str, str, str]) -> str:
    package, plugin, signals = flavour
    return template.format(package=package, plugin=plugin, signals=signals)


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_suite=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args, timeout=120)


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    found = result.parseoutcomes()
    return {k: v for k, v in found.items() if k in ("passed", "failed", "errors", "skipped")}


# A Celery test file: app and worker per test, tasks defined inside the test, the marker,
# celery_config, celery_parameters and depends_on_current_app.
BASIC = """
import pytest

from {package} import current_app, shared_task

pytest_plugins = ("{plugin}",)


@pytest.fixture(scope="session")
def celery_config():
    return {{"task_default_queue": "from-celery-config", "result_extended": True}}


@pytest.fixture(scope="session")
def celery_parameters():
    return {{"strict_typing": False}}


@pytest.fixture(scope="session")
def celery_worker_parameters():
    return {{"queues": ("from-celery-config", "other")}}


def test_app_is_configured(celery_app):
    assert celery_app.main == "celery.tests"
    assert celery_app.strict_typing is False
    assert celery_app.conf.task_default_queue == "from-celery-config"
    assert celery_app.conf.result_extended is True
    assert celery_app.conf.timezone == "UTC"
    assert celery_app.conf.enable_utc is True
    assert "celery.ping" in celery_app.tasks


@pytest.mark.celery(task_default_queue="from-marker", result_expires=42)
def test_marker_overrides_config(celery_app):
    assert celery_app.conf.task_default_queue == "from-marker"
    assert celery_app.conf.result_expires == 42
    assert celery_app.conf.result_extended is True


def test_task_runs_on_worker(celery_app, celery_worker):
    @celery_app.task
    def mul(x, y):
        return x * y

    celery_worker.reload()
    assert mul.delay(4, 4).get(timeout=10) == 16
    assert celery_app.send_task(mul.name, (2, 5)).get(timeout=10) == 10


def test_failure_comes_back(celery_app, celery_worker):
    @celery_app.task
    def broken():
        raise KeyError("nope")

    celery_worker.reload()
    with pytest.raises(KeyError):
        broken.delay().get(timeout=10)


def test_worker_consumes_other_queue(celery_app, celery_worker):
    @celery_app.task
    def where():
        return "here"

    celery_worker.reload()
    assert where.apply_async(queue="other").get(timeout=10) == "here"


def test_shared_task_uses_worker_app(celery_app, celery_worker):
    @shared_task
    def shared_add(x, y):
        return x + y

    celery_worker.reload()
    assert shared_add.delay(1, 2).get(timeout=10) == 3


def test_apps_are_fresh_per_test(celery_app):
    assert not [name for name in celery_app.tasks if name.endswith(".mul")]


def test_depends_on_current_app(celery_app, depends_on_current_app):
    assert current_app.main == celery_app.main
    assert current_app.conf.task_default_queue == "from-celery-config"
"""


def test_basic_suite(pytester: pytest.Pytester) -> None:
    result = run(pytester, suite(BASIC, OURS))
    result.assert_outcomes(passed=8)


def test_basic_suite_agrees_with_celery(pytester: pytest.Pytester) -> None:
    pytest.importorskip("celery.contrib.pytest")
    ours = run(pytester, suite(BASIC, OURS))
    theirs = run(pytester, suite(BASIC, CELERY))
    assert outcomes(ours) == outcomes(theirs) == {"passed": 8}


# Session app and worker, celery_includes (a task module), a threads pool with concurrency.
SESSION = """
import threading
import time

import pytest

from {package} import shared_task

pytest_plugins = ("{plugin}",)


@pytest.fixture(scope="session")
def celery_includes():
    return ["session_tasks"]


@pytest.fixture(scope="session")
def celery_worker_pool():
    return "threads"


@pytest.fixture(scope="session")
def celery_worker_parameters():
    return {{"concurrency": 4}}


def test_included_module_tasks(celery_session_app, celery_session_worker):
    import session_tasks

    assert "session_tasks.double" in celery_session_app.tasks
    assert session_tasks.double.delay(21).get(timeout=10) == 42


def test_concurrent_tasks(celery_session_app, celery_session_worker):
    import session_tasks

    started = time.monotonic()
    results = [session_tasks.nap.delay(0.5) for _ in range(4)]
    assert [r.get(timeout=10) for r in results] == ["rested"] * 4
    assert time.monotonic() - started < 1.9  # they ran side by side


"""

SESSION_TASKS = """
import time

from {package} import shared_task


@shared_task
def double(x):
    return 2 * x


@shared_task
def nap(seconds):
    time.sleep(seconds)
    return "rested"
"""


def test_session_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(session_tasks=suite(SESSION_TASKS, OURS))
    pytester.syspathinsert()
    result = run(pytester, suite(SESSION, OURS))
    result.assert_outcomes(passed=2)


# The app trap: code that reaches for current_app instead of the app it was given fails.
TRAP = """
import pytest

from {package} import current_app

pytest_plugins = ("{plugin}",)


@pytest.fixture(scope="session")
def use_celery_app_trap():
    return True


def test_current_app_is_trapped(celery_app):
    with pytest.raises(RuntimeError, match="current_app"):
        current_app.conf


def test_explicit_app_still_works(celery_app):
    assert celery_app.conf.timezone == "UTC"
"""


def test_app_trap(pytester: pytest.Pytester) -> None:
    result = run(pytester, suite(TRAP, OURS))
    result.assert_outcomes(passed=2)


def test_app_trap_agrees_with_celery(pytester: pytest.Pytester) -> None:
    pytest.importorskip("celery.contrib.pytest")
    ours = run(pytester, suite(TRAP, OURS))
    theirs = run(pytester, suite(TRAP, CELERY))
    assert outcomes(ours) == outcomes(theirs) == {"passed": 2}


# The marker pointing broker and results at a real Redis, as a test for Celery would do.
REDIS_BACKEND = """
import os

import pytest

URL = os.environ["TEST_REDIS_URL"]


@pytest.mark.celery(
    broker_url=URL, result_backend=URL, docket_key_prefix=os.environ["TEST_PREFIX"]
)
def test_results_in_redis(celery_app, celery_worker):
    import redis

    assert celery_app.conf.result_backend == URL

    @celery_app.task
    def hello(name):
        return f"hello {{name}}"

    result = hello.delay("redis")
    assert result.get(timeout=10) == "hello redis"
    client = redis.Redis.from_url(URL)
    assert any(client.scan_iter(match=f"*{{result.id}}*"))


@pytest.mark.celery(broker_url=URL, docket_key_prefix=os.environ["TEST_PREFIX"] + ":b")
def test_results_follow_the_broker(celery_app, celery_worker):
    @celery_app.task
    def triple(x):
        return 3 * x

    assert triple.delay(5).get(timeout=10) == 15
"""


@pytest.mark.redis
def test_marker_result_backend_on_real_redis(
    pytester: pytest.Pytester, redis_server_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_REDIS_URL", redis_server_url)
    monkeypatch.setenv("TEST_PREFIX", prefix)
    # The plugin from conftest.py, as Celery's docs suggest; any warning fails the run.
    pytester.makeconftest('pytest_plugins = ("celery_docket.contrib.pytest",)')
    result = run(pytester, suite(REDIS_BACKEND, OURS), "-W", "error::UserWarning")
    result.assert_outcomes(passed=2)


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ("celery_docket.contrib.pytest",)')
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*celery(**overrides)*"])


def test_no_worker_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_WORKER", "1")
    source = """
pytest_plugins = ("celery_docket.contrib.pytest",)


def test_worker_skipped(celery_worker):
    assert celery_worker is None
"""
    result = run(pytester, source)
    result.assert_outcomes(passed=1)


def test_start_worker_directly() -> None:
    """start_worker as a context manager, outside any fixture (Celery's signature)."""
    from celery_docket.contrib.testing import TestApp, setup_default_app
    from celery_docket.contrib.testing.worker import (
        TestWorkController,
        start_worker,
        test_worker_started,
        test_worker_stopped,
    )

    events: list[str] = []

    def started(sender: object = None, **kwargs: object) -> None:
        events.append("started")

    def stopped(sender: object = None, **kwargs: object) -> None:
        events.append("stopped")

    test_worker_started.connect(started)
    test_worker_stopped.connect(stopped)
    app = TestApp(config={"task_default_queue": "direct"})
    try:
        with setup_default_app(app):
            with start_worker(
                app, pool="threads", concurrency=2, shutdown_timeout=5, without_mingle=True
            ) as worker:
                assert isinstance(worker, TestWorkController)

                @app.task
                def echo(x: int) -> int:
                    return x

                assert echo.delay(7).get(timeout=10) == 7
    finally:
        test_worker_started.disconnect(started)
        test_worker_stopped.disconnect(stopped)
    assert events == ["started", "stopped"]
