"""When the Django fix-up is installed, and what it changes on the app (in this process:
nothing here sets Django up, so other tests are not affected)."""

from __future__ import annotations

import pytest

import celery_docket
from celery_docket import Task
from celery_docket.fixups import install_fixups
from celery_docket.fixups.django import DjangoFixup

pytest.importorskip("django")


def _app(**kwargs):
    return celery_docket.Celery("fx", broker="memory://fixup", set_as_current=False, **kwargs)


def test_not_installed_without_the_settings_variable(monkeypatch) -> None:
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    app = _app()
    assert app._fixups == []
    assert app.task_cls is Task


def test_installed_with_it_and_djangotask_becomes_the_task_class(monkeypatch) -> None:
    from celery_docket.contrib.django.task import DjangoTask

    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "nowhere.settings")
    app = _app()
    (fixup,) = app._fixups
    assert isinstance(fixup, DjangoFixup)
    assert app.task_cls is DjangoTask

    @app.task
    def hello():
        return "hi"

    assert isinstance(hello, DjangoTask) and hasattr(hello, "delay_on_commit")


def test_an_explicit_task_class_and_fixups_off_are_kept(monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "nowhere.settings")

    class Mine(Task):
        pass

    assert _app(task_cls=Mine).task_cls is Mine
    off = _app(fixups=[])
    assert off._fixups == [] and off.task_cls is Task


def test_celerys_fixup_path_names_ours(monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "nowhere.settings")
    app = _app(fixups=[])
    (fixup,) = install_fixups(app, ["celery.fixups.django:fixup"])
    assert isinstance(fixup, DjangoFixup)


@pytest.mark.parametrize(
    "name", [None, "celery.beat:PersistentScheduler", "celery_docket.beat.Scheduler"]
)
def test_default_beat_schedulers_need_no_database(name) -> None:
    from celery_docket.worker.beat import BeatPlanner

    app = _app()
    if name:
        app.conf.beat_scheduler = name
    assert BeatPlanner(app).database is None


def test_another_beat_scheduler_class_is_refused_at_start() -> None:
    from celery_docket.exceptions import ImproperlyConfigured
    from celery_docket.worker.beat import BeatPlanner

    app = _app()
    app.conf.beat_scheduler = "myproj.sched:Custom"
    with pytest.raises(ImproperlyConfigured, match="beat_scheduler 'myproj.sched:Custom' cannot"):
        BeatPlanner(app)
