"""The documentation site (docs/*.md, mkdocs.yml) stays true to the code.

* Every fenced ``python`` block of every page runs, in a fresh interpreter from the
  repository root; a block holding ``def test_...`` functions runs as a test file under
  pytest with the ``celery_docket.contrib.pytest`` plugin. A block is left out only when an
  HTML comment ``<!-- skip-test: reason -->`` stands right before it, and fewer than 10% of
  the blocks may be left out.
* Every ``celery-docket ...`` command line in ``bash``/``console`` blocks names a subcommand
  and flags that ``celery-docket <sub> --help`` lists.
* ``mkdocs build --strict`` succeeds, and every relative link of the pages and of the built
  HTML resolves to a file (and anchor) that exists. External URLs are never fetched; they
  only have to be well-formed.
"""

from __future__ import annotations

import functools
import html.parser
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
CLI = [sys.executable, "-m", "celery_docket.cli.main"]
SHELL_LANGS = {"bash", "sh", "shell", "console", "shell-session"}
SKIP = re.compile(r"^\s*<!--\s*skip-test:\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
TIMEOUT = 180


# -- reading the pages --------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        lang = (match["info"].split() or [""])[0].lower()
        previous = next((line for line in reversed(lines[:i]) if line.strip()), "")
        skip = SKIP.match(previous)
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = lines[j].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        assert j < len(lines), f"{page.name}:{i + 1}: unclosed code fence"
        out.append(Block(page, i + 1, lang, "\n".join(body) + "\n", skip and skip["reason"]))
        i = j + 1
    return out


BLOCKS = [block for page in PAGES for block in read_blocks(page)]
PYTHON_BLOCKS = [b for b in BLOCKS if b.lang in ("python", "py", "python3")]
SHELL_BLOCKS = [b for b in BLOCKS if b.lang in SHELL_LANGS]


def prose(page: Path) -> str:
    """The page without its fenced blocks (links inside code are not links)."""
    text = page.read_text(encoding="utf-8")
    kept: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match["fence"]
            kept.append("")
            continue
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                fence = None
            kept.append("")
            continue
        kept.append(line)
    return re.sub(r"`[^`\n]*`", "``", "\n".join(kept))


# -- python blocks ------------------------------------------------------------------------


def _env() -> dict[str, str]:
    """The environment of a sample: this checkout importable, no CELERY_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.pop("NO_WORKER", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def test_pages_have_python_blocks() -> None:
    assert PAGES, "docs/*.md not found"
    assert PYTHON_BLOCKS, "no python blocks in docs/*.md"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.id for b in PYTHON_BLOCKS])
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    if block.skip is not None:
        pytest.skip(f"skip-test: {block.skip}")
    if re.search(r"^def test_\w+\(", block.code, re.M):
        (tmp_path / "test_block.py").write_text(block.code, encoding="utf-8")
        command = [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("-p", "celery_docket.contrib.pytest", "test_block.py"),
        ]
        cwd = tmp_path
    else:
        script = tmp_path / "block.py"
        script.write_text(block.code, encoding="utf-8")
        command, cwd = [sys.executable, str(script)], ROOT
    try:
        done = subprocess.run(
            command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        output = f"{exc.stdout!s}\n{exc.stderr!s}"  # text, as run() was asked for
        pytest.fail(f"{block.id} did not finish within {TIMEOUT}s:\n{output}")
    assert done.returncode == 0, (
        f"{block.id} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


def test_fewer_than_a_tenth_of_the_python_blocks_are_skipped() -> None:
    skipped = [b.id for b in PYTHON_BLOCKS if b.skip is not None]
    assert len(skipped) * 10 < len(PYTHON_BLOCKS), (
        f"{len(skipped)} of {len(PYTHON_BLOCKS)} python blocks are skipped: {skipped}"
    )
    assert all(b.skip for b in PYTHON_BLOCKS if b.skip is not None), "a skip needs a reason"


def test_every_skip_marker_stands_before_a_block() -> None:
    starts = {(b.page, b.line) for b in BLOCKS}
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not SKIP.match(line):
                continue
            following = next(
                (n for n in range(number + 1, len(lines) + 1) if lines[n - 1].strip()), None
            )
            assert (page, following) in starts, f"{page.name}:{number}: marker without a block"


# -- command lines ------------------------------------------------------------------------


@dataclass(frozen=True)
class Help:
    options: dict[str, bool]  # flag -> takes a value
    commands: frozenset[str]


@functools.cache
def cli_help(path: tuple[str, ...]) -> Help:
    args = [*CLI, *path, "--help"]
    done = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    options: dict[str, bool] = {}
    commands: set[str] = set()
    section = ""
    for line in done.stdout.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":").lower()
            continue
        stripped = line.strip()
        if section == "options" and stripped.startswith("-"):
            spec = re.split(r"\s{2,}", stripped)[0]
            names = re.findall(r"(?:^|,\s*)(--?[\w-]+)", spec)
            rest = re.sub(r"(?:^|,\s*)--?[\w-]+", "", spec).strip(" ,")
            for name in names:
                options[name] = bool(rest)
        elif section == "commands" and stripped:
            commands.add(stripped.split()[0])
    return Help(options, frozenset(commands))


def shell_commands(block: Block) -> list[str]:
    """Command lines of a block: continuation lines joined; in console, only ``$`` lines."""
    lines: list[str] = []
    pending = ""
    taking = block.lang != "console"
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if not pending and block.lang == "console":
            taking = line.lstrip().startswith("$ ")
            line = line.lstrip()[2:] if taking else line
        if not taking:
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def invocations(command: str) -> list[list[str]]:
    """The argument lists of every ``celery-docket`` run in a shell command line."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[list[str]] = []
    current: list[str] | None = None
    for token in lexer:
        if token and set(token) <= set("();<>|&"):
            current = None
            continue
        if current is not None:
            current.append(token)
        elif posixpath.basename(token) == "celery-docket":
            current = []
            out.append(current)
    return out


def check_options(tokens: list[str], help_: Help, where: str) -> int:
    """Check the flags among ``tokens``; returns the index of the first positional."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-") or token == "-":
            return i
        name, has_value = token.split("=", 1)[0], "=" in token
        if name not in help_.options and not name.startswith("--"):
            name, has_value = token[:2], len(token) > 2  # -lINFO
        assert name in help_.options, f"{where}: {token!r} is not an option of {where}"
        i += 1 if has_value or not help_.options[name] else 2
    return i


def check_invocation(args: list[str]) -> None:
    """Walk ``celery-docket [opts] sub [opts] [subsub [opts]] [positional [opts]]...``."""
    path: tuple[str, ...] = ()
    help_ = cli_help(path)
    rest = args[check_options(args, help_, "celery-docket") :]
    while rest:
        token, rest = rest[0], rest[1:]
        if help_.commands:
            where = " ".join(["celery-docket", *path])
            assert token in help_.commands, (
                f"{where} has no subcommand {token!r} ({sorted(help_.commands)})"
            )
            path += (token,)
            help_ = cli_help(path)
        # else: a positional argument (a task name or id); options may follow it
        rest = rest[check_options(rest, help_, " ".join(["celery-docket", *path])) :]


SHELL_WITH_CLI = [b for b in SHELL_BLOCKS if any(map(invocations, shell_commands(b)))]


def test_docs_show_celery_docket_commands() -> None:
    assert SHELL_WITH_CLI, "no celery-docket command lines in docs/*.md"


@pytest.mark.parametrize("block", SHELL_WITH_CLI, ids=[b.id for b in SHELL_WITH_CLI])
def test_command_lines_use_real_subcommands_and_flags(block: Block) -> None:
    for command in shell_commands(block):
        for args in invocations(command):
            try:
                check_invocation(args)
            except AssertionError as exc:
                raise AssertionError(f"{block.id}: `{command.strip()}`: {exc}") from None


def test_the_command_line_checker_catches_mistakes() -> None:
    check_invocation(["-A", "proj", "worker", "-l", "INFO", "-Q", "a,b", "--concurrency=4"])
    check_invocation(["-A", "proj", "call", "proj.add", "--args", "[1, 2]", "--countdown", "5"])
    with pytest.raises(AssertionError, match="no subcommand"):
        check_invocation(["-A", "proj", "wroker"])
    if "dead" in cli_help(()).commands:  # a group of subcommands
        check_invocation(["-A", "proj", "dead", "list", "-n", "10"])
        with pytest.raises(AssertionError, match="not an option"):
            check_invocation(["-A", "proj", "dead", "list", "--no-such-flag"])
    with pytest.raises(AssertionError, match="not an option"):
        check_invocation(["-A", "proj", "worker", "--no-such-flag"])
    with pytest.raises(AssertionError, match="not an option"):
        check_invocation(["--no-such-global", "worker"])
    assert invocations("ID=$(celery-docket -A p call t) && .venv/bin/celery-docket result $ID") == [
        ["-A", "p", "call", "t"],
        ["result", "$ID"],
    ]


# -- links in the pages -------------------------------------------------------------------

MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_REF = re.compile(r"^\s*\[[^\]]+\]:\s*<?(?P<target>\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
AUTOLINK = re.compile(r"<(?P<target>https?://[^>\s]+)>")
EXTERNAL = ("http://", "https://", "mailto:")
WRITTEN_SEPARATELY = DOCS / "operations.md"


def slugify(text: str) -> str:
    """Python-Markdown's toc slug (mkdocs' default anchor ids)."""
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose(path), re.M):
        slug = slugify(match.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}_{n}")
    return frozenset(out)


def page_links(page: Path) -> list[str]:
    text = prose(page)
    return [m["target"] for rx in (MD_LINK, MD_REF, AUTOLINK) for m in rx.finditer(text)]


def is_well_formed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "mailto":
        return bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", parts.path, re.I))
    host = parts.hostname or ""
    return (
        parts.scheme in ("http", "https")
        and re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", host, re.I) is not None
        and not re.search(r"\s", url)
    )


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_of_the_pages_resolve(page: Path) -> None:
    broken = []
    for target in page_links(page):
        if target.startswith(EXTERNAL):
            continue
        assert not target.startswith("/"), f"{page.name}: absolute link {target!r}"
        path, _, fragment = target.partition("#")
        file = (page.parent / unquote(path)).resolve() if path else page
        if file == WRITTEN_SEPARATELY and not fragment:
            continue  # may not exist yet; the site build stands in for it
        if not file.is_file():
            broken.append(f"{target} (no file {file})")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target} (no heading #{fragment} in {file.name})")
    assert not broken, f"{page.name}: broken links: {broken}"


def test_external_urls_are_well_formed() -> None:
    external = sorted({t for page in PAGES for t in page_links(page) if t.startswith(EXTERNAL)})
    print("external URLs (not fetched):", *external, sep="\n  ")
    assert [url for url in external if not is_well_formed(url)] == []


# -- the site -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mkdocs build --strict`` of a copy of docs/ (with a stand-in for a missing
    operations.md, which is written separately), into a temporary directory."""
    pytest.importorskip("mkdocs")
    yaml = pytest.importorskip("yaml")
    work = tmp_path_factory.mktemp("docs-build")
    docs = work / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("__pycache__"))
    if not (docs / WRITTEN_SEPARATELY.name).exists():
        (docs / WRITTEN_SEPARATELY.name).write_text(
            "# Operators: inspect, revoke, purge\n\nWritten separately.\n", encoding="utf-8"
        )
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config["docs_dir"] = str(docs)
    config["hooks"] = [str((ROOT / hook).resolve()) for hook in config.get("hooks", [])]
    (work / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    out = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file"]
        + [str(work / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=work,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def test_nav_lists_every_page() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def entries(nav: object) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, list):
            return [e for item in nav for e in entries(item)]
        if isinstance(nav, dict):
            return [e for value in nav.values() for e in entries(value)]
        return []

    listed = entries(config["nav"])
    assert "operations.md" in listed
    assert sorted({p.name for p in PAGES} | {"operations.md"}) == sorted(listed)


def test_mkdocs_build_strict(site: Path) -> None:
    for page in PAGES:
        assert (site / page.with_suffix(".html").name).is_file(), page.name
    assert (site / "repo" / "MIGRATING.md").exists() or (site / "repo" / "MIGRATING.html").exists()


class _Refs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.refs.append(value)
            elif name in ("id", "name"):
                self.ids.add(value)


@functools.cache
def _parse(path: Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_links_of_the_built_site_resolve(site: Path) -> None:
    broken, external = [], set()
    for page in sorted(site.rglob("*.html")):
        for ref in _parse(page).refs:
            if ref.startswith(("data:", "javascript:")):
                continue
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith("//"):
                external.add(ref)
                continue
            path = unquote(parts.path)
            if not path:
                target = page
            elif path.startswith("/"):
                target = site / path.lstrip("/")
            else:
                target = (page.parent / path).resolve()
            if target.is_dir():
                target = target / "index.html"
            rel = page.relative_to(site)
            if not target.is_file():
                broken.append(f"{rel}: {ref}")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _parse(target).ids:
                    broken.append(f"{rel}: {ref} (no such anchor)")
    assert not broken, broken
    assert [url for url in sorted(external) if not is_well_formed(url)] == []


def test_benchmark_results_are_shown_when_present(site: Path) -> None:
    text = (site / "benchmarks.html").read_text(encoding="utf-8")
    assert "bench-results" not in text
    if (ROOT / "benchmarks" / "results" / "compare.svg").is_file():
        assert "repo/benchmarks/results/compare.svg" in text
        assert (site / "repo" / "benchmarks" / "results" / "compare.svg").is_file()
    else:
        assert "No results in this build" in text or "compare.json" in text


# -- the configuration page lists real settings ---------------------------------------------


def _setting_names(section: str) -> set[str]:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"configuration.md has no section {section!r}"
    body = match.group(1)
    rows = re.findall(r"^\|\s*([^|]+?)\s*\|", body, re.M)
    if rows:  # a table: the names in its first column
        return {n for row in rows for n in re.findall(r"`([a-z_]+)`", row)}
    names: set[str] = set()  # a list in a paragraph, and the first name of each bullet
    for line in body.splitlines():
        if line.startswith("- "):
            names.update(re.findall(r"`([a-z_]+)`", line)[:1])
        elif line and not line[0].isspace():
            names.update(re.findall(r"`([a-z_]+)`", line))
    return names


def test_configuration_page_names_real_settings() -> None:
    from celery_docket.app.base import SUPPORTED_SETTINGS
    from celery_docket.config import DEFAULTS, DOCKET_DEFAULTS

    honoured = _setting_names("Settings that are honoured")
    ours = _setting_names("Settings of celery_docket")
    accepted = _setting_names("Settings accepted without effect")
    assert honoured and ours and accepted
    assert honoured - set(DEFAULTS) == set()
    assert honoured - set(SUPPORTED_SETTINGS) == set(), "these would warn as unsupported"
    assert ours == set(DOCKET_DEFAULTS) - {"task_default_retry_delay"}
    assert accepted - set(SUPPORTED_SETTINGS) - set(DOCKET_DEFAULTS) == set()
    assert honoured & accepted == set()
