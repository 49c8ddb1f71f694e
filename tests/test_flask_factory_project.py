"""A Flask app-factory project, as Flask's Celery guide writes it, run by the real CLI.

Flask itself is not needed: a stand-in with ``app_context()`` and ``extensions`` is enough to
show what matters, that the worker finds the app behind the factory and every task runs
inside the base class's ``__call__`` (prefork children included).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from celery_docket import Celery
from tests.test_cli import command, write

pytestmark = pytest.mark.redis

FILES = {
    "flaskproj/__init__.py": """
import contextlib
import os

from celery_docket import Celery, Task

ACTIVE = []


class Flask:
    def __init__(self, name):
        self.name, self.extensions, self.config = name, {}, {}

    @contextlib.contextmanager
    def app_context(self):
        ACTIVE.append(self)
        try:
            yield
        finally:
            ACTIVE.pop()


def celery_init_app(app):
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def create_app():
    app = Flask("flaskproj")
    app.config["CELERY"] = {
        "broker_url": os.environ["FP_BROKER"],
        "docket_key_prefix": os.environ["FP_PREFIX"],
        "imports": ["flaskproj.tasks"],
    }
    celery_init_app(app)
    return app
""",
    "flaskproj/tasks.py": """
from celery_docket import shared_task

from . import ACTIVE


@shared_task(name="flaskproj.in_context")
def in_context():
    return bool(ACTIVE)
""",
    "make_celery.py": """
from flaskproj import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
""",
}


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_flask_factory_worker_runs_tasks_in_app_context(
    pool: str, tmp_path: Path, redis_server_url: str, prefix: str
) -> None:
    write(tmp_path, FILES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.update(FP_BROKER=redis_server_url, FP_PREFIX=prefix)
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*command(), "-A", "make_celery", "worker", "-P", pool, "-c", "1", "-l", "INFO"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    sender = Celery("fp-sender", broker=redis_server_url, set_as_current=False)
    sender.conf.docket_key_prefix = prefix
    try:
        assert sender.send_task("flaskproj.in_context").get(timeout=30) is True, (
            log_path.read_text()
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        sender.close()
    assert "Traceback" not in log_path.read_text()
