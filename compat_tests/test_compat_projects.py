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
    TaskBase = app.Task
    assert issubclass(TaskBase, system.Task)
    ContextTask = _context_task(system, entered)
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
