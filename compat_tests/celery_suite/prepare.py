"""Fetch Celery's sdist and lay out its integration suite with imports pointed at us.

Nothing of Celery's code is committed: the sdist of the version pinned in our ``test`` extra
is downloaded with pip into a cache directory, its ``t/`` package is extracted, and only the
import lines are rewritten (task names, logger names and strings stay as Celery wrote them).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: the members of the sdist the suite needs, relative to its top directory
SUITE_FILES = ("t/__init__.py", "t/canvas_helpers.py", "t/skip.py")
SUITE_DIRS = ("t/integration/",)

_FROM = re.compile(r"^(\s*)from celery(\.[\w.]+)? import ")
_IMPORT = re.compile(r"^(\s*)import celery(\.[\w.]+)?\s*(#.*)?$")


def pinned_celery_version(pyproject: Path = REPO / "pyproject.toml") -> str:
    """The exact Celery version our ``test`` extra pins (``celery==X.Y.Z``)."""
    match = re.search(r'"celery==([\w.]+)"', pyproject.read_text())
    if match is None:
        raise SystemExit("pyproject.toml's test extra must pin celery as celery==X.Y.Z")
    return match.group(1)


def rewrite_imports(source: str) -> str:
    """Point import lines at ``celery_docket``; every other line is left as it is."""
    out = []
    for line in source.splitlines(keepends=True):
        text = line.rstrip("\n")
        if m := _FROM.match(text):
            indent, sub = m.group(1), m.group(2) or ""
            text = f"{indent}from celery_docket{sub} import " + text[m.end() :]
        elif m := _IMPORT.match(text):
            indent, sub = m.group(1), m.group(2) or ""
            extra = f"; import celery_docket{sub}" if sub else ""
            text = f"{indent}import celery_docket as celery{extra}"
        out.append(text + ("\n" if line.endswith("\n") else ""))
    return "".join(out)


def download_sdist(version: str, cache: Path) -> Path:
    """The sdist of ``celery==version`` in ``cache``, downloaded with pip once."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"celery-{version}.tar.gz"))
    if found:
        return found[0]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-d",
            str(cache),
            f"celery=={version}",
        ],
        check=True,
    )
    found = sorted(cache.glob(f"celery-{version}.tar.gz"))
    if not found:
        raise SystemExit(f"pip did not leave celery-{version}.tar.gz in {cache}")
    return found[0]


def extract_suite(sdist: Path, dest: Path) -> Path:
    """Extract the suite into ``dest`` (replacing an earlier copy) with imports rewritten."""
    top = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        members = [
            m
            for m in archive.getmembers()
            if m.isfile()
            and (
                m.name.removeprefix(top + "/") in SUITE_FILES
                or any(m.name.removeprefix(top + "/").startswith(d) for d in SUITE_DIRS)
            )
        ]
        if not members:
            raise SystemExit(f"{sdist} holds no t/integration suite")
        for member in members:
            relative = member.name.removeprefix(top + "/")
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = archive.extractfile(member)
            assert handle is not None
            data = handle.read()
            if relative.endswith(".py"):
                data = rewrite_imports(data.decode()).encode()
            target.write_bytes(data)
    return dest
