"""``shell``, the answers for Celery commands we do not have, and ``-P`` in ``--help``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from celery_docket.cli.hints import HINTS
from celery_docket.cli.main import celery as celery_group
from tests.test_cli import isolated, unique, write  # noqa: F401 - fixture


def invoke(args: list[str], **kwargs):
    return CliRunner().invoke(celery_group, args, prog_name="celery-docket", **kwargs)


def test_shell_has_app_tasks_and_task(isolated) -> None:  # noqa: F811
    pkg = unique("shell")
    write(
        isolated,
        {
            f"{pkg}.py": "from celery_docket import Celery\napp = Celery('sh')\n"
            "@app.task\ndef add(x, y):\n    return x + y\n"
        },
    )
    script = (
        "print(app.main, celery is app, add.name, Task.__name__, group.__name__)\n"
        "print(add(2, 3))\n"
    )
    result = invoke(["-A", pkg, "shell", "--python"], input=script)
    assert result.exit_code == 0, result.output
    assert f"sh True {pkg}.add Task group" in result.output
    assert ">>> 5" in result.output.splitlines()


def test_shell_without_tasks(isolated) -> None:  # noqa: F811
    pkg = unique("shellt")
    write(
        isolated,
        {
            f"{pkg}.py": "from celery_docket import Celery\napp = Celery('sh')\n"
            "@app.task\ndef add(x, y):\n    return x + y\n"
        },
    )
    result = invoke(["-A", pkg, "shell", "--python", "-T"], input="print('add' in dir())\n")
    assert result.exit_code == 0, result.output
    assert "False" in result.output


@pytest.mark.parametrize("name", sorted(HINTS))
def test_celery_commands_we_lack_point_elsewhere(name: str) -> None:
    result = invoke([name, "--any", "args"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "No such command" not in result.output
    assert "celery-docket" in lines[0] or "grep" in lines[0]


def test_multi_points_at_the_systemd_unit() -> None:
    assert "docs/operations.md" in invoke(["multi", "start", "w1"]).output
    from pathlib import Path

    ops = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    assert "celery-docket@.service" in ops


def test_pool_help_lists_only_pools_we_run() -> None:
    text = invoke(["worker", "--help"]).output
    assert "[prefork|processes|threads|solo]" in text
    for refused in ("gevent", "eventlet", "custom"):
        assert refused not in text
