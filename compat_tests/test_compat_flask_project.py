"""A Flask app-factory project's own test suite, on real Celery and after the import swap.

``compat_tests/projects/flaskapp`` is written as Flask's Celery guide writes a project: an app
factory, a ``Task`` subclass whose ``__call__`` enters the app context, ``shared_task``s, views
that send tasks, and a pytest suite that runs a worker with ``start_worker``. For the oracle the
copy runs unchanged on real Celery; for celery_docket the copy is first rewritten by
``celery-docket migrate-code``, as a user would. Both must pass the same tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest

pytest.importorskip("flask")

PROJECT = Path(__file__).resolve().parent / "projects" / "flaskapp"
BIN = Path(sys.executable).parent
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)", re.M)


def _on_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _run_suite(root: Path, broker: str) -> tuple[dict[str, str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "FLASK"))}
    env.update(FLASKPROJ_BROKER=broker, PYTHONPATH=str(root))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = proc.stdout + proc.stderr
    return {name: state for state, name in OUTCOME.findall(out)}, out


def test_flask_factory_project_passes_its_own_suite(
    system: SimpleNamespace, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A Flask app-factory project (__call__ app context, shared_task, views, start_worker)
    passes its own test suite"""
    if system.name != "celery" and getattr(system, "backend", "") != "redis":
        pytest.skip("the project's suite runs in its own process: memory:// cannot reach it")
    url = request.getfixturevalue("redis_server_url")
    root = tmp_path / "flaskapp"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("__pycache__"))
    if system.name == "celery":
        broker = _on_db(url, 11)
    else:
        broker = _on_db(url, 12)
        migrated = subprocess.run(
            [str(BIN / "celery-docket"), "migrate-code", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert "from celery import" not in (root / "flaskproj" / "__init__.py").read_text()
        assert "celery_docket.contrib.testing.worker" in (root / "tests/conftest.py").read_text()
    outcomes, out = _run_suite(root, broker)
    expected = {
        f"tests/test_tasks.py::{name}"
        for name in (
            "test_add_through_the_view_and_a_worker",
            "test_task_runs_in_the_app_context_on_the_worker",
            "test_retries_then_succeeds",
            "test_retries_exhausted_raise",
            "test_eager_mode_runs_in_the_app_context",
            "test_view_with_the_task_mocked",
        )
    }
    assert outcomes == dict.fromkeys(expected, "PASSED"), out[-4000:]
