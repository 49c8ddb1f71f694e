"""Each compat scenario runs on real Celery (the oracle) and on celery_docket."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.conftest import redis_server_url  # noqa: F401 - fixture


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
    )


def _docket_system() -> SimpleNamespace:
    import celery_docket
    from celery_docket import exceptions, signals
    from celery_docket.worker import WorkController

    def make_app(**conf: object):
        app = celery_docket.Celery(f"compat{uuid.uuid4().hex[:6]}", set_as_current=False)
        app.conf.update({"broker_url": f"memory://{uuid.uuid4().hex[:8]}", **conf})
        return app

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
    )


@pytest.fixture(params=["celery", "celery_docket"])
def system(request: pytest.FixtureRequest) -> Iterator[SimpleNamespace]:
    yield _celery_system() if request.param == "celery" else _docket_system()
