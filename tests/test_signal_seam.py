"""Every task and worker signal is sent from ``celery_docket/app/lifecycle.py`` only.

Read from the source (as the layering test reads imports): a ``<signal>.send(`` of a task,
publish, worker or logging signal anywhere else in the package fails here, so a new call
site cannot bypass the one place receivers' order and arguments are defined. App-level
signals (``import_modules``, ``on_configure``...) and the test plugin's own belong to
their owners and are not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import celery_docket
from celery_docket import signals

ROOT = Path(celery_docket.__file__).parent
SEAM = ROOT / "app" / "lifecycle.py"
OWNED_ELSEWHERE = {"import_modules", "user_preload_options"}
LIFECYCLE = {
    name
    for name in signals.__all__
    if isinstance(getattr(signals, name, None), signals.Signal) and name not in OWNED_ELSEWHERE
}


def _sends(path: Path) -> list[tuple[int, str]]:
    """(line, signal name) of each ``<...>.<signal>.send(`` / ``send_robust(`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("send", "send_robust"):
            continue
        target = node.func.value
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name in LIFECYCLE:
            found.append((node.lineno, name))
    return found


def test_lifecycle_signals_are_sent_from_the_seam_only() -> None:
    outside = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted(ROOT.rglob("*.py"))
        if path != SEAM
        for line, name in _sends(path)
    ]
    assert outside == [], outside


def test_the_seam_sends_the_signals_a_worker_and_its_tasks_go_through() -> None:
    sent = {name for _line, name in _sends(SEAM)}
    expected = {
        "before_task_publish",
        "after_task_publish",
        "task_received",
        "task_unknown",
        "task_revoked",
        "task_prerun",
        "task_success",
        "task_failure",
        "task_retry",
        "task_rejected",
        "task_postrun",
        "celeryd_init",
        "worker_init",
        "worker_process_init",
        "worker_process_shutdown",
        "worker_ready",
        "worker_shutdown",
        "setup_logging",
    }
    assert expected <= sent, sorted(expected - sent)
    assert sent <= LIFECYCLE


def test_the_checker_sees_a_send_outside_the_seam(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from celery_docket import signals\nsignals.task_prerun.send(sender=None)\n")
    assert _sends(bad) == [(2, "task_prerun")]
