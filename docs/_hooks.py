"""mkdocs hooks for the celery_docket site (no plugins, no network).

* A page may link to a file of the repository outside ``docs/`` with a relative link
  (``../MIGRATING.md``), which also works when the page is read in the repository. The hook
  copies each such file into the site under ``repo/`` (Markdown files become pages) and
  rewrites the link to point there.
* ``<!-- bench-results -->`` in a page is replaced by the chart
  ``benchmarks/results/compare.svg`` and the table of ``benchmarks/results/compare.json`` when
  they exist (they are written by ``python benchmarks/compare.py``), or by a note that there
  are no results yet.

Links are resolved against the repository that holds this file, so a build of a copy of
``docs/`` (as ``tests/test_docs.py`` does) still finds the repository's files.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
MIRROR = "repo"
RESULTS = "benchmarks/results"
MARKER = "<!-- bench-results -->"

# ](target) or ](target "title"): inline links and images; the target has no spaces.
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?(?P<title>\s+\"[^\"]*\")?\)")


def _outside_target(src_uri: str, target: str) -> Path | None:
    """The repository file a relative link of page ``src_uri`` names, if outside docs/."""
    if "://" in target or target.startswith(("/", "mailto:")):
        return None
    path = (DOCS / posixpath.dirname(src_uri) / target).resolve()
    if DOCS in path.parents or REPO not in path.parents or not path.is_file():
        return None
    return path


def _mirror_uri(path: Path) -> str:
    return f"{MIRROR}/{path.relative_to(REPO).as_posix()}"


def on_files(files: Files, config: Any) -> Files:
    wanted: set[Path] = set()
    for page in files.documentation_pages():
        if page.src_uri.startswith(f"{MIRROR}/") or page.abs_src_path is None:
            continue
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            path = _outside_target(page.src_uri, match.group("target"))
            if path is not None:
                wanted.add(path)
    for name in ("compare.svg",):
        path = REPO / RESULTS / name
        if path.is_file():
            wanted.add(path)
    for path in sorted(wanted):
        uri = _mirror_uri(path)
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def _results_block(page_uri: str) -> str:
    svg = REPO / RESULTS / "compare.svg"
    data = REPO / RESULTS / "compare.json"
    parts: list[str] = []
    if svg.is_file():
        link = posixpath.relpath(_mirror_uri(svg), posixpath.dirname(page_uri) or ".")
        parts.append(f"![celery_docket vs Celery 5.x on one Redis]({link})")
    if data.is_file():
        try:
            table = json.loads(data.read_text(encoding="utf-8")).get("table")
        except (OSError, ValueError):
            table = None
        if table:
            parts.append("```text\n" + str(table).rstrip() + "\n```")
    if not parts:
        parts.append(
            "*No results in this build: run `python benchmarks/compare.py` to write "
            "`benchmarks/results/compare.json` and `compare.svg`, then build the docs again.*"
        )
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    src_uri = page.file.src_uri
    if src_uri.startswith(f"{MIRROR}/"):
        return markdown

    def rewrite(match: re.Match[str]) -> str:
        path = _outside_target(src_uri, match.group("target"))
        if path is None:
            return match.group(0)
        link = posixpath.relpath(_mirror_uri(path), posixpath.dirname(src_uri) or ".")
        return f"]({link}{match.group('anchor') or ''}{match.group('title') or ''})"

    markdown = LINK.sub(rewrite, markdown)
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, _results_block(src_uri))
    return markdown
