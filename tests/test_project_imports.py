"""Modules that exist so a project's imports resolve: the unsupported parts fail loudly."""

from __future__ import annotations

import uuid

import pytest

from celery_docket import Celery, Task


def _app() -> Celery:
    return Celery(f"imp{uuid.uuid4().hex[:6]}", broker=f"memory://{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("celery_docket.beat", fromlist=["x"]).Scheduler(app=None),
        lambda: __import__("celery_docket.beat", fromlist=["x"]).PersistentScheduler(),
        lambda: __import__("celery_docket.beat", fromlist=["x"]).ScheduleEntry("e"),
        lambda: __import__("celery_docket.backends.redis", fromlist=["x"]).RedisBackend(),
        lambda: __import__("celery_docket.worker.request", fromlist=["x"]).Request({}),
        lambda: __import__("celery_docket.utils.nodenames", fromlist=["x"]).worker_direct("h"),
    ],
)
def test_unsupported_features_raise_not_implemented(make) -> None:
    with pytest.raises(NotImplementedError, match="celery_docket"):
        make()


def test_subclassing_the_stubs_still_imports() -> None:
    from celery_docket.beat import Scheduler

    class DatabaseScheduler(Scheduler):
        pass

    with pytest.raises(NotImplementedError, match="DatabaseScheduler"):
        DatabaseScheduler()


def test_task_with_a_custom_request_class_is_refused_when_defined() -> None:
    from celery_docket.worker.request import Request

    class MyRequest(Request):
        def on_timeout(self, soft, timeout):  # pragma: no cover - never called
            pass

    class MyTask(Task):
        Request = MyRequest

    app = _app()
    with pytest.raises(NotImplementedError, match="MyRequest"):

        @app.task(base=MyTask)
        def job():  # pragma: no cover - never registered
            return 1


def test_app_task_module_path_is_the_same_class() -> None:
    from celery_docket.app.task import Task as FromApp

    assert FromApp is Task


def test_utils_time_timezone_local_and_named_zones() -> None:
    from datetime import datetime, timedelta

    from celery_docket.utils.time import timezone

    assert timezone.get_timezone("UTC").utcoffset(None) == timedelta(0)
    berlin = timezone.get_timezone("Europe/Berlin")
    winter = timezone.to_local(datetime(2026, 1, 1, 12), berlin)
    assert winter.hour == 13
    assert isinstance(timezone.local.utcoffset(datetime(2026, 1, 1)), timedelta)


def test_bootsteps_import_but_adding_a_step_or_option_raises() -> None:
    from celery_docket import bootsteps

    class LivenessProbe(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Timer"}

    app = _app()
    assert len(app.steps["worker"]) == 0
    with pytest.raises(NotImplementedError, match="LivenessProbe"):
        app.steps["worker"].add(LivenessProbe)
    with pytest.raises(NotImplementedError, match="bootsteps"):
        app.steps["consumer"] |= {LivenessProbe}
    with pytest.raises(NotImplementedError, match="user_options"):
        app.user_options["preload"].add(lambda parser: None)
    with pytest.raises(NotImplementedError):
        LivenessProbe(None)
