"""Beat configuration on Celery and celery_docket: the same entries from the same calls."""

from __future__ import annotations

from datetime import timedelta


def _schedules(system):
    if system.name == "celery":
        from celery import schedules
    else:
        from celery_docket import schedules
    return schedules


def test_add_periodic_task_from_on_after_configure(system) -> None:
    """add_periodic_task in an on_after_configure handler fills beat_schedule as in Celery."""
    app = system.make_app()
    sched = _schedules(system)

    @app.task(name="beat.add")
    def add(x, y):
        return x + y

    @app.on_after_configure.connect
    def setup(sender, **kwargs):
        sender.add_periodic_task(10.0, add.s(2, 2), name="every 10")
        sender.add_periodic_task(sched.crontab(minute="*/15"), add.s(1, 1))
        sender.add_periodic_task(timedelta(minutes=1), add.s(), args=(3, 4), expires=30)

    app.finalize()
    _ = app.conf.broker_url  # Celery configures on first read of the configuration
    entries = dict(app.conf.beat_schedule)
    assert sorted(entries) == sorted(["every 10", "beat.add(1, 1)", "beat.add(3, 4)"])
    assert entries["every 10"]["task"] == "beat.add"
    assert tuple(entries["every 10"]["args"]) == (2, 2)
    assert entries["every 10"]["schedule"] == 10.0
    assert entries["beat.add(1, 1)"]["schedule"] == sched.crontab(minute="*/15")
    assert entries["beat.add(3, 4)"]["options"] == {"expires": 30}


def test_schedule_objects_behave_alike(system) -> None:
    """crontab/schedule construction, equality and repr match Celery's."""
    sched = _schedules(system)
    c = sched.crontab(minute="0", hour="*/3", day_of_week="mon-fri")
    assert c == sched.crontab(minute=0, hour="0,3,6,9,12,15,18,21", day_of_week="1-5")
    assert repr(sched.schedule(timedelta(seconds=30))) == "<freq: 30.00 seconds>"
    assert sched.maybe_schedule(5).run_every == timedelta(seconds=5)
