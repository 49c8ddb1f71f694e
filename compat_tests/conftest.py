"""Each compat scenario runs on real Celery (the oracle) and on celery_docket."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.conftest import isolate_shared_tasks, redis_server_url  # noqa: F401 - fixtures

#: projects copied and run by their scenarios (their own suites import real Celery)
collect_ignore_glob = ["projects/*"]


def _celery_system() -> SimpleNamespace:
    celery = pytest.importorskip("celery")
    from celery import exceptions, signals
    from celery.contrib.testing.worker import start_worker

    def make_app(**conf: object):
        app = celery.Celery(f"compat{uuid.uuid4().hex[:6]}", set_as_current=False)
        app.conf.update({"broker_url": "memory://", "result_backend": "cache+memory://", **conf})
        return app

    def worker(app):
        app.loader.import_module("celery.contrib.testing.tasks")
        return start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10)

    return SimpleNamespace(
        name="celery",
        make_app=make_app,
        worker=worker,
        exceptions=exceptions,
        signals=signals,
        Task=celery.Task,
        shared_task=celery.shared_task,
        module=lambda name: importlib.import_module(f"celery{name}"),
        find_app=lambda spec: importlib.import_module("celery.app.utils").find_app(spec),
    )


def _docket_system(redis_url: str | None = None) -> SimpleNamespace:
    """celery_docket on memory:// or, with ``redis_url``, on a real Redis under a key
    prefix of its own per app."""
    import celery_docket
    from celery_docket import exceptions, signals
    from celery_docket.worker import WorkController

    apps: list = []

    def make_app(**conf: object):
        app = celery_docket.Celery(f"compat{uuid.uuid4().hex[:6]}", set_as_current=False)
        if redis_url is None:
            app.conf.update({"broker_url": f"memory://{uuid.uuid4().hex[:8]}", **conf})
        else:
            prefix = f"compat{uuid.uuid4().hex[:10]}"
            app.conf.update({"broker_url": redis_url, "docket_key_prefix": prefix, **conf})
            apps.append(app)
        return app

    def cleanup() -> None:
        for app in apps:
            client = app.docket.redis
            prefix = app.docket.prefix
            for pattern in (f"{prefix}:*", f"{{{prefix}:*"):
                keys = list(client.scan_iter(match=pattern, count=1000))
                if keys:
                    client.delete(*keys)
            app.close()

    class _Running:
        def __init__(self, app) -> None:
            self.controller = WorkController(app, pool="solo", setup_logging=False)

        def __enter__(self):
            return self.controller.start_in_thread()

        def __exit__(self, *exc: object) -> None:
            self.controller.stop()

    return SimpleNamespace(
        name="celery_docket",
        make_app=make_app,
        worker=_Running,
        exceptions=exceptions,
        signals=signals,
        Task=celery_docket.Task,
        cleanup=cleanup,
        backend="redis" if redis_url else "memory",
        shared_task=celery_docket.shared_task,
        module=lambda name: importlib.import_module(f"celery_docket{name}"),
        find_app=lambda spec: importlib.import_module("celery_docket.cli.main").load_app(spec),
    )


@pytest.fixture(
    params=[
        "celery",
        "celery_docket",
        pytest.param("celery_docket_redis", marks=pytest.mark.redis),
    ]
)
def system(request: pytest.FixtureRequest) -> Iterator[SimpleNamespace]:
    """Real Celery (the oracle), celery_docket on memory:// and on a real Redis."""
    if request.param == "celery":
        import celery.app.builtins  # Celery's own finalizers: registered before the snapshot
        import celery.contrib.testing.tasks  # noqa: F401
        from celery import _state

        # Celery's @app.task is "shared": every app finalized later gets the task too, so one
        # scenario's tasks would land (as duplicate names) in the next scenario's app.
        before = set(_state._on_app_finalizers)
        try:
            yield _celery_system()
        finally:
            _state._on_app_finalizers.intersection_update(before)
        return
    url = request.getfixturevalue("redis_server_url") if request.param.endswith("redis") else None
    found = _docket_system(url)
    try:
        yield found
    finally:
        found.cleanup()


# -- the compatibility matrix: outcomes per scenario and system --------------------------

_outcomes: dict[tuple[str, str, str], str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Record each compat scenario's outcome per system (setup skips count as skipped)."""
    if "[" not in report.nodeid or not report.nodeid.startswith("compat_tests/"):
        return
    path, _, rest = report.nodeid.partition("::")
    name, _, system_id = rest.partition("[")
    system_id = system_id.rstrip("]")
    key = (path.rsplit("/", 1)[-1], name, system_id)
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[key] = report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    import json
    import os

    target = os.environ.get("COMPAT_RESULTS")
    if target and _outcomes:
        rows = [
            {"module": m, "scenario": n, "system": s, "outcome": o}
            for (m, n, s), o in sorted(_outcomes.items())
        ]
        with open(target, "w") as fh:
            json.dump(rows, fh, indent=1)
