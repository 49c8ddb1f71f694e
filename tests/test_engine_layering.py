"""The engine imports only the stdlib, redis, fakeredis and cloudpickle: never the facade."""

from __future__ import annotations

import ast
import pathlib

ENGINE = pathlib.Path(__file__).resolve().parents[1] / "celery_docket" / "engine"
FORBIDDEN = ("celery", "kombu", "click", "celery_docket")
ALLOWED_ABSOLUTE = ("celery_docket.engine",)


def imported_modules(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.append(node.module)
            elif node.level > 1:
                if node.module:
                    names.append("celery_docket." + node.module)
                else:
                    names += ["celery_docket." + alias.name for alias in node.names]
    return names


def test_engine_does_not_import_facade_cli_contrib_click_kombu_or_celery() -> None:
    files = sorted(ENGINE.glob("*.py"))
    assert files, "engine sources not found"
    offenders = []
    for path in files:
        for name in imported_modules(path):
            if name.startswith(ALLOWED_ABSOLUTE):
                continue
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_the_checker_catches_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import kombu\nfrom celery_docket.cli import main\nfrom .. import app\n")
    assert imported_modules(bad) == ["kombu", "celery_docket.cli", "celery_docket.app"]
