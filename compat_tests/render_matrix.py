"""Render MIGRATING.md's compatibility matrix from a compat_tests run.

``COMPAT_RESULTS=results.json pytest compat_tests`` records outcomes; then
``python compat_tests/render_matrix.py results.json --update MIGRATING.md`` rewrites the table
between its markers, and ``--check`` fails when the committed table differs from the run.
"""

from __future__ import annotations

import argparse
import ast
import json
import pathlib
import sys

START, END = "<!-- compat-matrix:start -->", "<!-- compat-matrix:end -->"
MARK = {"passed": "yes", "failed": "**NO**", "skipped": "skipped"}


def _docstrings() -> dict[tuple[str, str], str]:
    """First docstring line of each scenario, else its humanized name."""
    out: dict[tuple[str, str], str] = {}
    for path in pathlib.Path(__file__).parent.glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                doc = ast.get_docstring(node)
                title = doc.splitlines()[0] if doc else node.name[5:].replace("_", " ")
                out[(path.name, node.name)] = title.rstrip(".")
    return out


def render(rows: list[dict[str, str]]) -> str:
    titles = _docstrings()
    table: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        table.setdefault((row["module"], row["scenario"]), {})[row["system"]] = row["outcome"]
    lines = [
        START,
        "| area | scenario (the same test on each) | Celery 5.x | celery_docket, memory:// "
        "| celery_docket, Redis |",
        "|---|---|---|---|---|",
    ]
    for (module, scenario), result in sorted(table.items()):
        area = module.removeprefix("test_compat_").removesuffix(".py")
        title = titles.get((module, scenario), scenario)
        lines.append(
            f"| {area} | {title} | {MARK.get(result.get('celery', ''), '-')} "
            f"| {MARK.get(result.get('celery_docket', ''), '-')} "
            f"| {MARK.get(result.get('celery_docket_redis', ''), '-')} |"
        )
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--update", metavar="MARKDOWN")
    parser.add_argument("--check", metavar="MARKDOWN")
    ns = parser.parse_args()
    table = render(json.loads(pathlib.Path(ns.results).read_text()))
    target = ns.update or ns.check
    if target is None:
        print(table)
        return 0
    doc = pathlib.Path(target)
    text = doc.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = head + table + tail
    if ns.check:
        if new != text:
            print(
                f"{target}: the compatibility matrix differs from this compat_tests run; "
                f"regenerate it with compat_tests/render_matrix.py --update",
                file=sys.stderr,
            )
            return 1
        print(f"{target}: compatibility matrix matches this run")
        return 0
    doc.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
