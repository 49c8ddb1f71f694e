"""compare.py's constants and child-process plumbing (the package snapshot, ``--role`` runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness.procs import last_json

HERE = Path(__file__).resolve().parent.parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
ENTRY = HERE / "compare.py"
"""The script children run (with ``--role``)."""

SYSTEMS = ("celery", "docket")
LABEL = {"celery": "Celery 5.x", "docket": "celery_docket"}
APP = {"celery": "benchmarks.bench_celery_app", "docket": "benchmarks.bench_docket_app"}
APP_FILE = {"celery": HERE / "bench_celery_app.py", "docket": HERE / "bench_docket_app.py"}
QUEUE = "celery"
DOCKET_STREAM = "{cd:celery}:stream"
DOCKET_GROUP = "workers"
COLOURS = {"celery": "#8c8c8c", "docket": "#2b6cb0"}

TARGETS = {
    "drain": ("drain rate >= 50x Celery prefork", 50.0, "ratio_ge"),
    "latency_p50": ("delay->get p50 <= 1/3 of Celery's", 1 / 3, "ratio_le"),
    "lateness_p99": ("countdown lateness p99 <= 25 ms", 25.0, "docket_le"),
    "rss_idle_per_proc": ("idle RSS per process <= Celery's", 1.0, "ratio_le"),
}


class Failed(RuntimeError):
    pass


SNAPSHOT: str | None = None
"""A copy of celery_docket/ taken at the start; children import it (see ``take_snapshot``)."""


def take_snapshot() -> str:
    """Copy celery_docket/ to a temporary directory that goes first on every child's path.

    Other people may edit the package while a run is going; without this, workers started a
    minute apart would run different code.
    """
    directory = tempfile.mkdtemp(prefix="compare-bench-src-")
    shutil.copytree(
        ROOT / "celery_docket",
        Path(directory) / "celery_docket",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return directory


def child_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = (SNAPSHOT or "", str(ROOT), env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["BENCH_BROKER_URL"] = url
    env.pop("BENCH_RESULTS_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_role(role: str, system: str, url: str, timeout: float, *extra: str) -> dict[str, Any]:
    """Run this file as ``--role`` in a fresh process; return the JSON line it prints."""
    cmd = [sys.executable, str(ENTRY), "--role", role, "--system", system]
    cmd += [*extra]
    try:
        proc = subprocess.run(
            cmd,
            env=child_env(url),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise Failed(f"{role} ({system}) did not finish within {timeout:.0f}s") from exc
    doc = last_json(proc.stdout)
    if proc.returncode != 0 or not doc:
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise Failed(f"{role} ({system}) exited {proc.returncode}: {' | '.join(tail)}")
    return doc


def script(name: str) -> str | None:
    """A console script next to this interpreter (the venv's), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def imported_from(url: str) -> str:
    """Where a child process imports celery_docket from (checks the snapshot is used).

    Run from a neutral directory: like a console script (whose ``sys.path[0]`` is its own
    directory), unlike ``python -c`` in the repo, whose ``''`` entry would find the work tree.
    """
    out = subprocess.run(
        [sys.executable, "-c", "import celery_docket; print(celery_docket.__file__)"],
        env=child_env(url),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() or out.stderr.strip()[-200:]


def check_twins() -> None:
    """The two app modules must differ only in their SYSTEM import line."""
    a = APP_FILE["celery"].read_text().splitlines()
    b = APP_FILE["docket"].read_text().splitlines()
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    if len(a) != len(b) or len(diff) != 1 or not all("# SYSTEM" in s for s in diff[0]):
        raise SystemExit(
            "bench_celery_app.py and bench_docket_app.py must differ only in the line marked "
            f"'# SYSTEM' (found {len(diff)} differing lines)"
        )
