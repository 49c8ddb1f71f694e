"""``celery-docket migrate-code``: imports and module-path strings rewritten, nothing else."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from celery_docket.cli.main import celery as celery_group
from celery_docket.cli.migrate_code import rewrite_config, rewrite_python

SOURCE = textwrap.dedent(
    """\
    import os, celery.result
    import celery
    import celery as c
    from celery import Celery, shared_task
    from celery.utils.log import get_task_logger, get_logger
    from celery.result import (
        AsyncResult,
    )
    from celery_app import thing
    from .celery import app
    from unittest import mock
    import importlib
    import logging

    log = logging.getLogger("celery.app.trace")
    lg = get_logger("celery")
    pytest_plugins = ("celery.contrib.pytest",)
    mod = importlib.import_module("celery.schedules")


    @mock.patch("celery.app.task.Task.retry")
    def t(m):
        app.send_task("celery.ping")
        app.task(name="celery.backend_cleanup")
        return "élan", mock.patch('celery.app.task.Task.retry')
    """
)


def test_rewrite_python_imports_and_targets_only() -> None:
    new, what = rewrite_python(SOURCE)
    assert "import os, celery_docket.result, celery_docket as celery\n" in new
    assert "\nimport celery_docket as celery\n" in new
    assert "import celery_docket as c\n" in new
    assert "from celery_docket import Celery, shared_task" in new
    assert "from celery_docket.utils.log import" in new
    assert "from celery_docket.result import (" in new
    assert "from celery_app import thing" in new and "from .celery import app" in new
    assert 'pytest_plugins = ("celery_docket.contrib.pytest",)' in new
    assert 'import_module("celery_docket.schedules")' in new
    assert '@mock.patch("celery_docket.app.task.Task.retry")' in new
    assert "mock.patch('celery_docket.app.task.Task.retry')" in new
    # task names and logger names stay
    assert 'getLogger("celery.app.trace")' in new and 'get_logger("celery")' in new
    assert 'send_task("celery.ping")' in new and 'name="celery.backend_cleanup"' in new
    assert len(what) == 10
    assert rewrite_python(new) == (new, [])  # idempotent


def test_more_plugin_and_patch_forms() -> None:
    source = (
        "pytest_plugins += ['celery.contrib.pytest']\n"
        "pytest_plugins: tuple = ('celery.contrib.pytest',)\n"
        "mock.patch.multiple('celery.app.task', retry=None)\n"
        "monkeypatch.setattr('celery.app.task.Task.retry', None)\n"
        "log = get_task_logger('celery.x')\n"
    )
    new, what = rewrite_python(source)
    assert new.count("celery_docket.") == 4 and "get_task_logger('celery.x')" in new
    assert len(what) == 4


def test_rewritten_import_celery_result_still_resolves(tmp_path: Path) -> None:
    code = "import celery.result\nprint(celery.result.AsyncResult.__module__, celery.Celery)\n"
    new, _ = rewrite_python(code)
    out = subprocess.run(
        [sys.executable, "-c", new], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("celery_docket.result <class 'celery_docket.app.base.Celery'>")


def test_rewrite_config_plugin_option() -> None:
    ini = "[pytest]\naddopts = -p celery.contrib.pytest -p celery_docket.contrib.pytest\n"
    assert rewrite_config(ini)[0] == (
        "[pytest]\naddopts = -p celery_docket.contrib.pytest -p celery_docket.contrib.pytest\n"
    )
    toml = '[tool.pytest.ini_options]\naddopts = ["-p", "celery.contrib.pytest"]\n'
    assert '"celery_docket.contrib.pytest"' in rewrite_config(toml)[0]


def _tree(root: Path) -> None:
    (root / "proj").mkdir()
    (root / "proj" / "tasks.py").write_text("from celery import shared_task\n")
    (root / "proj" / "clean.py").write_text("import os\n")
    (root / "setup.cfg").write_text("[tool:pytest]\naddopts = -p celery.contrib.pytest\n")
    venv = root / "venv-any-name"
    (venv / "lib" / "celery").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr\n")
    (venv / "lib" / "celery" / "app.py").write_text("from celery import x\n")
    for skipped in ("site-packages", "node_modules", ".git", "__pycache__"):
        (root / skipped).mkdir()
        (root / skipped / "m.py").write_text("import celery\n")


def test_check_diff_and_write(tmp_path: Path, monkeypatch) -> None:
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    checked = runner.invoke(celery_group, ["migrate-code", "--check", "."])
    assert checked.exit_code == 1, checked.output
    assert "proj/tasks.py" in checked.output and "setup.cfg" in checked.output
    assert "venv-any-name" not in checked.output and "site-packages" not in checked.output

    diffed = runner.invoke(celery_group, ["migrate-code", "--diff", "."])
    assert diffed.exit_code == 0, diffed.output
    assert "-from celery import shared_task\n+from celery_docket import shared_task" in (
        diffed.output
    )
    assert (tmp_path / "proj" / "tasks.py").read_text() == "from celery import shared_task\n"

    wrote = runner.invoke(celery_group, ["migrate-code", "."])
    assert wrote.exit_code == 0, wrote.output
    assert "rewrote proj/tasks.py: from celery import" in wrote.output
    assert (tmp_path / "proj" / "tasks.py").read_text() == "from celery_docket import shared_task\n"
    assert "celery_docket.contrib.pytest" in (tmp_path / "setup.cfg").read_text()
    assert (tmp_path / "venv-any-name" / "lib" / "celery" / "app.py").read_text() == (
        "from celery import x\n"
    )
    assert (tmp_path / "site-packages" / "m.py").read_text() == "import celery\n"

    again = runner.invoke(celery_group, ["migrate-code", "--check", "."])
    assert again.exit_code == 0 and "nothing to rewrite" in again.output
