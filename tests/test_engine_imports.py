"""No import circle among the engine's modules (read statically, every import counted).

Function-level and ``TYPE_CHECKING`` imports count too: a circle hidden in a function body
is still a circle a newcomer must untangle, and it is how the last one crept in.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENGINE = ROOT / "celery_docket" / "engine"


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolved_imports(path: pathlib.Path, module: str, known: set[str]) -> set[str]:
    """Modules ``path`` (module ``module``) imports, relative imports resolved; ``from
    package import name`` imports ``package.name`` when that is a module, else ``package``
    (the package's own ``__init__``, which Python runs before any submodule, is not counted
    as a dependency of its submodules unless they import a name from it)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out


def import_graph(package_dir: pathlib.Path, root: pathlib.Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(package_dir.rglob("*.py"))}
    known = set(files)
    return {m: resolved_imports(p, m, known) & known for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle found by a depth-first walk (each reported once, from its first node)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                loop = path[path.index(nxt) :]
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    found.append([*loop, nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_cycle_among_engine_modules() -> None:
    graph = import_graph(ENGINE)
    assert "celery_docket.engine.worker.core" in graph, "engine sources not found"
    assert cycles(graph) == []


def test_the_checker_finds_a_circle_through_a_function_level_import(
    tmp_path: pathlib.Path,
) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import x\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (pkg / "d.py").write_text("from . import c\n")
    graph = import_graph(pkg, tmp_path)
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
