"""The client side of the Django tests, run as its own process: ``python drive.py SCENARIO``.

Each scenario prints one JSON line. The tests run it in a subprocess so that Django's global
set-up never leaks into the test process (which also runs every other test).
"""

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

import django

django.setup()

from django.db import transaction  # noqa: E402
from notes import tasks  # noqa: E402
from notes.models import Note  # noqa: E402
from proj.celery import app  # noqa: E402


def probe(count: str) -> object:
    return [tasks.probe_connection.delay(n).get(timeout=30) for n in range(int(count))]


def on_commit_calls() -> object:
    """When does delay_on_commit send? Counted by wrapping the task's delay."""
    sent = []
    task = tasks.add_note
    task.delay = lambda *a, **kw: sent.append(("delay", a))
    task.apply_async = lambda *a, **kw: sent.append(("apply_async", a))
    try:
        with transaction.atomic():
            task.delay_on_commit("kept")
            task.apply_async_on_commit(("kept-async",))
            inside = len(sent)
        try:
            with transaction.atomic():
                task.delay_on_commit("rolled-back")
                raise RuntimeError
        except RuntimeError:
            pass
    finally:
        del task.delay, task.apply_async
    return {
        "inside": inside,
        "sent": [[how, list(a)] for how, a in sent],
        "task_class": [c.__name__ for c in type(task._get_current_object()).__mro__],
    }


def on_commit_worker() -> object:
    """In the worker: a note made in a transaction, a task sent on its commit."""
    ok = tasks.note_then_delay_on_commit.delay("committed", False).get(timeout=30)
    failed = tasks.note_then_delay_on_commit.delay("rolled", True)
    try:
        failed.get(timeout=30)
    except RuntimeError:
        pass
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if Note.objects.filter(text="committed-after-commit").exists():
            break
        time.sleep(0.1)
    time.sleep(1.0)  # a wrongly sent "rolled-after-commit" would have landed by now
    texts = sorted(Note.objects.values_list("text", flat=True))
    return {"pk": ok, "texts": texts}


def results() -> object:
    import uuid

    from django_celery_results.models import TaskResult

    # an explicit id, as projects pass; unique, since results outlive a test's key prefix
    good = tasks.add_note.apply_async(("row",), kwargs={}, task_id=f"row-{uuid.uuid4()}")
    good.get(timeout=30)
    bad = tasks.fails.delay("boom")
    try:
        bad.get(timeout=30)
    except ValueError:
        pass
    rows = {}
    for task_id in (good.id, bad.id):
        row = TaskResult.objects.get(task_id=task_id)
        rows[task_id] = {
            "status": row.status,
            "result": row.result,
            "traceback": row.traceback,
            "task_name": row.task_name,
            "task_args": row.task_args,
            "task_kwargs": row.task_kwargs,
            "worker": row.worker,
            "date_created": row.date_created is not None,
            "date_done": row.date_done is not None,
            "date_started": row.date_started is not None,
        }
    return {"good": good.id, "bad": bad.id, "rows": rows, "backend": str(app.conf.result_backend)}


def thread_exit() -> object:
    """A pool thread that ends with a connection open: does the fix-up close it?"""
    import threading

    from django.db import connections

    (fixup,) = app._fixups
    fixup.worker_fixup.install()
    seen = {}

    def work() -> None:
        Note.objects.exists()
        wrapper = connections["default"]  # this thread's own (not the main thread's proxy)
        seen["wrapper"] = wrapper
        seen["open_in_thread"] = wrapper.connection is not None

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    del thread
    import gc

    gc.collect()
    return {
        "open_in_thread": seen["open_in_thread"],
        "open_after": seen["wrapper"].connection is not None,
    }


def _every(seconds: int):
    from django_celery_beat.models import IntervalSchedule

    return IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)[0]


def beat_rows(*kinds: str) -> object:
    """Rows as the admin makes them: every second, a one-off clocked, a disabled one."""
    from django.utils import timezone
    from django_celery_beat.models import ClockedSchedule, PeriodicTask, SolarSchedule

    if "interval" in kinds:
        PeriodicTask.objects.create(
            name="every-second", task="notes.tasks.tick", interval=_every(1), args='["a"]'
        )
        PeriodicTask.objects.create(
            name="switched-off",
            task="notes.tasks.tick",
            interval=_every(1),
            args='["off"]',
            enabled=False,
        )
    if "clocked" in kinds:
        clocked = ClockedSchedule.objects.create(clocked_time=timezone.now())
        PeriodicTask.objects.create(
            name="just-once",
            task="notes.tasks.tick",
            clocked=clocked,
            one_off=True,
            kwargs='{"label": "once"}',
        )
    if "solar" in kinds:
        solar = SolarSchedule.objects.create(event="sunset", latitude=48.1, longitude=11.6)
        PeriodicTask.objects.create(
            name="at-sunset", task="notes.tasks.tick", solar=solar, args='["sun"]'
        )
    return sorted(PeriodicTask.objects.values_list("name", flat=True))


def beat_edit() -> object:
    """An admin edit: switch one row off, add another (saved as the admin saves them)."""
    from django_celery_beat.models import PeriodicTask

    row = PeriodicTask.objects.get(name="every-second")
    row.enabled = False
    row.save()
    PeriodicTask.objects.create(
        name="added-later", task="notes.tasks.tick", interval=_every(1), args='["b"]'
    )
    return beat_state()


def beat_state() -> object:
    from django_celery_beat.models import PeriodicTask

    ticks = {}
    for text in Note.objects.values_list("text", flat=True):
        ticks[text] = ticks.get(text, 0) + 1
    rows = {
        r.name: {
            "enabled": r.enabled,
            "total_run_count": r.total_run_count,
            "last_run_at": r.last_run_at is not None,
        }
        for r in PeriodicTask.objects.all()
    }
    return {"ticks": ticks, "rows": rows}


def fork_child() -> object:
    """A forked child closes what it inherited: the parent's connection must still work."""
    from django.db import connection

    (fixup,) = app._fixups
    worker_fixup = fixup.worker_fixup
    worker_fixup.install()
    Note.objects.create(text="before-fork")  # the parent's connection is open now
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            worker_fixup.on_worker_process_init()
            inherited_closed = connection.connection is None
            Note.objects.create(text="from-child")  # a connection of its own
            connection.close()
            code = 0 if inherited_closed else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    parent_ok = Note.objects.filter(text="from-child").exists()  # on the inherited socket
    return {"child_exit": os.waitstatus_to_exitcode(status), "parent_query_ok": parent_ok}


def count() -> object:
    return tasks.count_notes.delay().get(timeout=30)


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    print(json.dumps(globals()[scenario](*args), default=str))
