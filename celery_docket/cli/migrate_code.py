"""``celery-docket migrate-code``: point a project's ``celery`` imports at ``celery_docket``.

A ``sed`` over ``*.py`` also edits an in-tree virtualenv's installed Celery and mangles task
and logger names that merely start with ``celery.``. This command reads Python with ``ast``
(import statements, string literals in the positions that name a module) and rewrites only
those spans, so ``get_logger("celery")`` and ``send_task("celery.ping")`` stay as they are.
"""

from __future__ import annotations

import ast
import difflib
import io
import os
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

__all__ = ("Change", "migrate_code", "rewrite_config", "rewrite_python", "walk")

OLD, NEW = "celery", "celery_docket"
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", "site-packages", ".tox", ".nox"}
)
CONFIG_FILES = frozenset({"pytest.ini", "setup.cfg", "pyproject.toml", "tox.ini"})

# calls whose first argument names a module or an object by its dotted path
_TARGET_CALLS = frozenset(
    {
        "patch",  # mock.patch("celery.app.task.Task.retry")
        "multiple",  # mock.patch.multiple("celery.app.task", ...)
        "setattr",  # monkeypatch.setattr("celery.x.y", value)
        "delattr",
        "import_module",
        "importorskip",
        "__import__",
        "symbol_by_name",
        "import_string",
        "instantiate",
        "find_spec",
    }
)
_TARGET_KEYWORDS = frozenset({"task_cls", "loader", "target"})
_PLUGIN_OPTION = re.compile(r"(?<![\w.])celery(?=\.contrib\.pytest\b)")


@dataclass
class Change:
    """What was (or would be) rewritten in one file."""

    path: Path
    old: str
    new: str
    what: list[str] = field(default_factory=list)


def _names_celery(value: str) -> bool:
    return value == OLD or value.startswith((f"{OLD}.", f"{OLD}:"))


# -- Python sources --------------------------------------------------------------------------


def _char_col(line: str, byte_col: int) -> int:
    """ast reports UTF-8 byte offsets; edits need character offsets."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))


class _Finder(ast.NodeVisitor):
    """Collects ``(line, col, end_col, replacement, label)`` edits, positions from ast."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.edits: list[tuple[int, int, int, str, str]] = []

    def _span(self, node: ast.AST) -> tuple[int, int, int] | None:
        lineno, end_lineno = node.lineno, node.end_lineno  # type: ignore[attr-defined]
        if lineno != end_lineno:
            return None
        line = self.lines[lineno - 1]
        start = _char_col(line, node.col_offset)  # type: ignore[attr-defined]
        end = _char_col(line, node.end_col_offset)  # type: ignore[attr-defined]
        return lineno, start, end

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not _names_celery(alias.name):
                continue
            span = self._span(alias)
            if span is None:
                continue
            rest = alias.name[len(OLD) :]
            if alias.asname:
                text = f"{NEW}{rest} as {alias.asname}"
            elif rest:
                # ``import celery.result`` binds ``celery`` with ``.result`` loaded: keep both
                text = f"{NEW}{rest}, {NEW} as {OLD}"
            else:
                text = f"{NEW} as {OLD}"
            self.edits.append((*span, text, f"import {alias.name}"))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module or not _names_celery(node.module):
            return
        # the module is not a node of its own: find ``celery`` after ``from`` with tokenize
        first = self.lines[node.lineno - 1]
        start = _char_col(first, node.col_offset)
        tokens = tokenize.generate_tokens(io.StringIO(first[start:] + "\n").readline)
        try:
            keyword = next(tokens)
            name = next(tokens)
        except (tokenize.TokenError, StopIteration):
            return
        if keyword.string == "from" and name.string == OLD:
            col = start + name.start[1]
            self.edits.append((node.lineno, col, col + len(OLD), NEW, f"from {node.module} import"))

    def _string(self, node: ast.AST, label: str) -> None:
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            return
        if not _names_celery(node.value):
            return
        span = self._span(node)
        if span is None:
            return
        lineno, start, end = span
        literal = self.lines[lineno - 1][start:end]
        match = re.match(r"[rRuUbB]*(\"\"\"|'''|\"|')", literal)
        if match is None or not literal[match.end() :].startswith(OLD):
            return  # implicit concatenation or an escape: leave it for a person
        col = start + match.end()
        self.edits.append((lineno, col, col + len(OLD), NEW, f"{label} {node.value!r}"))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in _TARGET_CALLS and node.args:
            self._string(node.args[0], "string target")
        for keyword in node.keywords:
            if keyword.arg in _TARGET_KEYWORDS:
                self._string(keyword.value, f"{keyword.arg}=")
        self.generic_visit(node)

    def _plugins(self, targets: list[ast.expr], value: ast.expr | None) -> None:
        if value is None or not any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in targets
        ):
            return
        items = value.elts if isinstance(value, (ast.Tuple, ast.List)) else [value]
        for item in items:
            self._string(item, "pytest_plugins")

    def visit_Assign(self, node: ast.Assign) -> None:
        self._plugins(node.targets, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._plugins([node.target], node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._plugins([node.target], node.value)
        self.generic_visit(node)


def rewrite_python(source: str) -> tuple[str, list[str]]:
    """The source with its celery imports and module-path strings rewritten, and a list of
    what changed. Source that does not parse is returned unchanged."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source, []
    lines = source.splitlines(keepends=True)
    finder = _Finder(lines)
    finder.visit(tree)
    if not finder.edits:
        return source, []
    for lineno, start, end, text, _ in sorted(finder.edits, reverse=True):
        line = lines[lineno - 1]
        lines[lineno - 1] = line[:start] + text + line[end:]
    return "".join(lines), [label for *_, label in sorted(finder.edits)]


# -- pytest configuration files ----------------------------------------------------------------


def rewrite_config(text: str) -> tuple[str, list[str]]:
    """``-p celery.contrib.pytest`` (and the TOML list form) -> ``celery_docket.contrib.pytest``."""
    new, count = _PLUGIN_OPTION.subn(NEW, text)
    return new, ["pytest plugin celery.contrib.pytest"] * count


# -- walking a tree ----------------------------------------------------------------------------


def _skipped_dir(path: Path) -> bool:
    return path.name in SKIPPED_DIRS or (path / "pyvenv.cfg").exists()


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Python files and pytest config files under ``paths``, never inside a virtualenv."""
    for root in paths:
        if root.is_file():
            yield root
            continue
        if _skipped_dir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not _skipped_dir(here / d))
            for name in sorted(filenames):
                if name.endswith(".py") or name in CONFIG_FILES:
                    yield here / name


def plan(path: Path) -> Change | None:
    """The change for one file, or None when there is nothing to rewrite."""
    try:
        old = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if OLD not in old:
        return None
    if path.suffix == ".py":
        new, what = rewrite_python(old)
    elif path.name in CONFIG_FILES:
        new, what = rewrite_config(old)
    else:
        return None
    return Change(path, old, new, what) if new != old else None


def _summary(what: list[str]) -> str:
    counts: dict[str, int] = {}
    for item in what:
        counts[item] = counts.get(item, 0) + 1
    return "; ".join(f"{item} (x{n})" if n > 1 else item for item, n in counts.items())


@click.command("migrate-code", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument(
    "paths", nargs=-1, type=click.Path(exists=True, path_type=Path), metavar="[PATHS]..."
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if something would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print a unified diff.")
def migrate_code(paths: tuple[Path, ...], check: bool, show_diff: bool) -> None:
    """Rewrite celery imports to celery_docket in PATHS (default: the current directory).

    \b
    Rewrites `from celery... import`, `import celery` (as `import celery_docket as celery`),
    `import celery.result`, string targets (mock.patch("celery..."), importlib paths,
    pytest_plugins) and `-p celery.contrib.pytest` in pytest.ini, setup.cfg, tox.ini and
    pyproject.toml. Task names and logger names that start with "celery." are left alone.
    Virtualenvs (any directory with pyvenv.cfg), site-packages, .git, node_modules and
    __pycache__ are skipped.
    """
    changes = [c for c in map(plan, walk(paths or (Path("."),))) if c is not None]
    for change in changes:
        if show_diff:
            name = str(change.path)
            sys.stdout.writelines(
                difflib.unified_diff(
                    change.old.splitlines(keepends=True),
                    change.new.splitlines(keepends=True),
                    fromfile=f"a/{name}",
                    tofile=f"b/{name}",
                )
            )
        elif check:
            click.echo(f"would rewrite {change.path}: {_summary(change.what)}")
        else:
            change.path.write_text(change.new, encoding="utf-8")
            click.echo(f"rewrote {change.path}: {_summary(change.what)}")
    if not changes and not show_diff:
        click.echo("nothing to rewrite")
    elif check and not show_diff:
        click.echo(f"{len(changes)} file(s) would be rewritten", err=True)
    if check and changes:
        sys.exit(1)
