"""The engine imports only the stdlib, redis, fakeredis and cloudpickle: never the facade."""

from __future__ import annotations

import ast
import pathlib

from tests.test_engine_imports import module_name, resolved_imports

ENGINE = pathlib.Path(__file__).resolve().parents[1] / "celery_docket" / "engine"
FORBIDDEN = ("celery", "kombu", "click", "celery_docket")
ALLOWED_ABSOLUTE = ("celery_docket.engine",)


def imported_modules(path: pathlib.Path, module: str | None = None) -> list[str]:
    """Absolute names of what ``path`` imports (relative imports resolved against
    ``module``, by default the file's own name under the repository)."""
    name = module if module is not None else module_name(path)
    return sorted(resolved_imports(path, name, set()))


def test_engine_does_not_import_facade_cli_contrib_click_kombu_or_celery() -> None:
    files = sorted(ENGINE.rglob("*.py"))
    assert files, "engine sources not found"
    offenders = []
    for path in files:
        for name in imported_modules(path):
            if name.startswith(ALLOWED_ABSOLUTE):
                continue
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(ENGINE)}: {name}")
    assert offenders == []


def test_the_checker_catches_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import kombu\nfrom celery_docket.cli import main\nfrom ... import app\n")
    assert imported_modules(bad, "celery_docket.engine.worker.bad") == [
        "celery_docket",
        "celery_docket.cli",
        "kombu",
    ]


def test_the_checker_reads_the_worker_package() -> None:
    assert "celery_docket.engine.keys" in imported_modules(ENGINE / "worker" / "keep.py")


WORKER_NAMES = frozenset({"worker", "engine_worker", "_worker"})


def private_worker_accesses(root: pathlib.Path) -> list[str]:
    """``worker._x`` (also ``self.worker._x``, ``self._worker._x``) in the facade: it must
    attach through the engine's hooks (engine/hooks.py), not reach into the worker."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if ENGINE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__"):
                continue
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if name in WORKER_NAMES:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {name}.{node.attr}")
    return found


def test_the_facade_does_not_reach_into_the_engine_worker() -> None:
    assert private_worker_accesses(ENGINE.parent) == []


def test_the_checker_catches_a_private_worker_write(tmp_path: pathlib.Path) -> None:
    (tmp_path / "f.py").write_text(
        "worker._on_started = 1\nself._worker._paused.add(q)\nworker.hooks.add(h)\n"
    )
    assert private_worker_accesses(tmp_path) == [
        "f.py:1: worker._on_started",
        "f.py:2: _worker._paused",
    ]
