"""Patterns real projects (Flask app factories, FastAPI, test suites) rely on."""

from __future__ import annotations

import sys
import types
import uuid
from unittest import mock

TIMEOUT = 10


def test_mock_patch_shared_task_delay_restores(system) -> None:
    """mock.patch("proj.tasks.send_email.delay") on a shared_task patches and restores it"""
    app = system.make_app()
    app.set_current()
    name = f"compat.send_email_{uuid.uuid4().hex[:6]}"

    @system.shared_task(name=name)
    def send_email(to):
        return to

    module = types.ModuleType(f"compat_proj_{uuid.uuid4().hex[:6]}")
    module.send_email = send_email
    sys.modules[module.__name__] = module
    try:
        with mock.patch(f"{module.__name__}.send_email.delay") as delay:
            send_email.delay("a@example.com")
            delay.assert_called_once_with("a@example.com")
        assert not isinstance(send_email.delay, mock.MagicMock)
        assert "delay" not in vars(app.tasks[name])
        assert isinstance(send_email, system.Task)
    finally:
        del sys.modules[module.__name__]


def _context_task(system, entered: list[str]):
    class ContextTask(system.Task):
        def __call__(self, *args, **kwargs):
            entered.append(self.name)
            return self.run(*args, **kwargs)

    return ContextTask


def test_custom_task_call_wraps_worker_runs(system) -> None:
    """A task base's __call__ (Flask's app-context pattern) wraps each run on the worker"""
    entered: list[str] = []
    app = system.make_app()
    app.Task = _context_task(system, entered)

    @app.task(name="compat.ctx_add")
    def add(x, y):
        return x + y

    with system.worker(app):
        assert add.delay(2, 3).get(timeout=TIMEOUT) == 5
    assert entered == ["compat.ctx_add"]


def test_custom_task_call_wraps_eager_runs(system) -> None:
    """A task_cls with __call__ wraps eager runs and direct calls"""
    entered: list[str] = []
    app = system.make_app(task_always_eager=True)
    base = _context_task(system, entered)

    @app.task(name="compat.ctx_eager", base=base)
    def add(x, y):
        return x + y

    assert add.delay(1, 2).get(timeout=TIMEOUT) == 3
    assert add(3, 4) == 7
    assert entered == ["compat.ctx_eager", "compat.ctx_eager"]


def test_app_task_assigned_after_construction(system) -> None:
    """app.Task = ContextTask after Celery(...) is the base of tasks made afterwards"""
    entered: list[str] = []
    app = system.make_app()
    TaskBase = app.Task  # noqa: N806 - the names of the classes it builds
    assert issubclass(TaskBase, system.Task)
    ContextTask = _context_task(system, entered)  # noqa: N806 - the names of the classes it builds
    app.Task = ContextTask

    @app.task(name="compat.ctx_late")
    def ping():
        return "pong"

    assert isinstance(ping, ContextTask)
    assert ping.apply().get(timeout=TIMEOUT) == "pong"
    assert entered == ["compat.ctx_late"]


def test_app_factory_module_exposing_current_app(system, tmp_path, monkeypatch) -> None:
    """-A proj.celery where celery = current_app (an app factory) loads the app behind it"""
    pkg = f"compat_factory_{uuid.uuid4().hex[:6]}"
    flavour = system.name
    (tmp_path / f"{pkg}.py").write_text(
        f"from {flavour} import Celery, current_app\n"
        "def create_app():\n"
        "    return Celery('factory-made')\n"
        "made = create_app()\n"
        "celery = current_app\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        app = system.find_app(f"{pkg}.celery")
        assert app.main == "factory-made"
        assert system.find_app(f"{pkg}:made").main == "factory-made"
    finally:
        sys.modules.pop(pkg, None)


# -- the import paths real projects use (see the survey in MIGRATING.md) ----------------------

IMPORTED = {
    ".utils.time": (
        "get_exponential_backoff_interval",
        "humanize_seconds",
        "maybe_timedelta",
        "timezone",
        "remaining",
        "maybe_iso8601",
        "maybe_make_aware",
        "to_utc",
        "localize",
        "make_aware",
        "is_naive",
        "rate",
        "weekday",
        "utcoffset",
        "adjust_timestamp",
        "delta_resolution",
    ),
    ".utils": ("uuid", "gen_unique_id", "nodename", "nodesplit", "cached_property"),
    ".utils.nodenames": ("gethostname", "anon_nodename", "default_nodename", "host_format"),
    ".utils.text": ("pluralize", "truncate", "abbr", "abbrtask", "indent", "str_to_list"),
    ".utils.functional": ("chunks", "maybe_list", "is_list", "noop", "first", "uniq", "regen"),
    ".utils.imports": ("symbol_by_name", "instantiate", "qualname"),
    ".utils.log": ("get_task_logger", "get_logger"),
    ".utils.dispatch": ("Signal",),
    ".contrib.testing.app": ("TestApp", "setup_default_app", "Trap"),
    ".contrib.abortable": ("AbortableTask", "AbortableAsyncResult"),
    ".result": ("AsyncResult", "allow_join_result", "denied_join_result"),
    ".app.task": ("Task",),
    ".app.control": ("Control", "Inspect"),
    ".worker.request": ("Request",),
    ".beat": ("Scheduler", "PersistentScheduler", "ScheduleEntry", "SchedulingError"),
    ".backends.redis": ("RedisBackend",),
    ".platforms": ("signals", "EX_OK", "EX_FAILURE", "IS_WINDOWS"),
    ".bootsteps": ("Step", "StartStopStep", "ConsumerStep"),
    "": ("uuid", "chunks", "xmap", "xstarmap", "current_app", "shared_task"),
}


def test_import_paths_projects_use(system) -> None:
    """from celery.utils.time / utils / text / functional / contrib... import what projects use"""
    missing = [
        f"celery{module}.{name}"
        for module, names in IMPORTED.items()
        for name in names
        if not hasattr(system.module(module), name)
    ]
    assert missing == []
    assert issubclass(system.module(".app.task").Task, system.Task)


def test_utils_time_helpers(system) -> None:
    """celery.utils.time: backoff, humanize_seconds, maybe_timedelta, timezone give Celery's values"""
    from datetime import datetime, timedelta, timezone

    t = system.module(".utils.time")
    assert [t.get_exponential_backoff_interval(2, n, 60) for n in range(7)] == [
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]
    assert 0 <= t.get_exponential_backoff_interval(2, 3, 60, full_jitter=True) <= 16
    assert t.humanize_seconds(0) == "now"
    assert t.humanize_seconds(1) == "1.00 second"
    assert t.humanize_seconds(90) == "1.50 minutes"
    assert t.humanize_seconds(7200, prefix="in ") == "in 2.00 hours"
    assert t.humanize_seconds(86400 * 3) == "3.00 days"
    assert t.maybe_timedelta(30) == timedelta(seconds=30)
    assert t.maybe_timedelta(timedelta(1)) == timedelta(1)
    assert t.timezone.utc.utcoffset(None) == timedelta(0)
    aware = t.timezone.to_local(datetime(2026, 1, 1, 12), t.timezone.utc)
    assert aware == datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    assert t.maybe_iso8601("2026-01-02T03:04:05+00:00") == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc
    )
    assert t.rate("10/m") == 10 / 60 and t.weekday("monday") == 1
    start = datetime(2026, 1, 1, 12, 0, 30, tzinfo=timezone.utc)
    now = datetime(2026, 1, 1, 12, 0, 40, tzinfo=timezone.utc)
    assert t.remaining(start, timedelta(minutes=5), now) == timedelta(minutes=4, seconds=50)
    assert t.remaining(start, timedelta(minutes=5), now, relative=True) == timedelta(
        minutes=4, seconds=20
    )
    assert t.is_naive(datetime(2026, 1, 1)) and not t.is_naive(aware)


def test_utils_text_and_functional_helpers(system) -> None:
    """celery.utils.text / functional / uuid helpers return what Celery's return"""
    text, functional, utils = (
        system.module(".utils.text"),
        system.module(".utils.functional"),
        system.module(".utils"),
    )
    assert text.pluralize(1, "task") == "task" and text.pluralize(3, "task") == "tasks"
    assert text.truncate("hello world foo", 8) == "hello..."
    assert text.abbr("hello world", 8) == "hello..."
    assert text.abbrtask("proj.tasks.add_numbers", 15) == "p[.]add_numbers"
    assert text.indent("a\nb", 2) == "  a\n  b"
    assert text.str_to_list("a,b") == ["a", "b"]
    assert list(functional.chunks(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert functional.maybe_list("a") == ["a"] and functional.maybe_list(None) is None
    assert functional.maybe_list([1]) == [1]
    assert functional.first(lambda x: x > 1, [1, 2, 3]) == 2
    assert list(functional.uniq([1, 2, 1, 3])) == [1, 2, 3]
    regen = functional.regen(x for x in range(3))
    assert list(regen) == list(regen) == [0, 1, 2]
    assert len(utils.uuid()) == 36 and utils.uuid() != utils.uuid()
    assert utils.nodename("w1", "box") == "w1@box" and tuple(utils.nodesplit("w1@box")) == (
        "w1",
        "box",
    )
    assert (
        system.module(".utils.imports").symbol_by_name("os.path:join") is __import__("os").path.join
    )


def test_allow_join_result_inside_a_task(system) -> None:
    """allow_join_result() lets result.get() run inside a task; denied_join_result() refuses it"""
    app = system.make_app()
    result_mod = system.module(".result")

    @app.task(name="compat.join_leaf")
    def leaf():
        return 42

    @app.task(name="compat.join_parent")
    def parent(task_id, allow):
        res = app.AsyncResult(task_id)
        with result_mod.allow_join_result():
            if allow:
                return res.get(timeout=TIMEOUT)
            with result_mod.denied_join_result():
                try:
                    res.get(timeout=TIMEOUT)
                except RuntimeError:
                    return "refused"
                return "joined"

    with system.worker(app):
        done = leaf.delay()
        assert done.get(timeout=TIMEOUT) == 42
        assert parent.delay(done.id, False).get(timeout=TIMEOUT) == "refused"
        assert parent.delay(done.id, True).get(timeout=TIMEOUT) == 42


def test_abortable_task_sees_abort(system) -> None:
    """contrib.abortable: result.abort() makes the running task's is_aborted() true"""
    import time

    app = system.make_app()
    abortable = system.module(".contrib.abortable")

    @app.task(name="compat.abortable", bind=True, base=abortable.AbortableTask)
    def long_job(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.is_aborted():
                return "aborted"
            time.sleep(0.02)
        return "finished"

    with system.worker(app):
        r = long_job.delay()
        assert isinstance(r, abortable.AbortableAsyncResult)
        time.sleep(0.3)
        r.abort()
        assert r.get(timeout=TIMEOUT) == "aborted"
