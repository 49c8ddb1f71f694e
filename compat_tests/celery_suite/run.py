"""Run Celery's own integration suite against celery_docket and hold it to a checked-in list.

    python -m compat_tests.celery_suite.run                 # both files, compared to the list
    python -m compat_tests.celery_suite.run -k test_retry   # a subset (no stale-entry check)
    python -m compat_tests.celery_suite.run --write-list    # rewrite the list's test ids

The suite (``t/integration/test_tasks.py`` and ``test_canvas.py`` of the Celery version our
``test`` extra pins) runs against a redis-server of its own on a loopback port, as broker and
result backend, with our pytest plugin and the embedded worker. The run fails when a test
outside ``expected_failures.txt`` fails (a regression) and when a listed test passes (the list
must shrink). Each line of the list is ``<test id> | <reason>``; a reason that starts with
``flaky:`` names a race in the test itself, where either outcome is accepted. Tests run with ``--runxfail``:
a test Celery marks as an expected failure counts by what it does here, not by the marker.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from compat_tests.celery_suite.prepare import (
    REPO,
    download_sdist,
    extract_suite,
    pinned_celery_version,
)

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected_failures.txt"
FILES = ("t/integration/test_tasks.py", "t/integration/test_canvas.py")
CACHE = REPO / ".cache" / "celery-suite"

PYTEST_INI = """\
[pytest]
python_classes = test_*
python_files = test_*.py
addopts = --runxfail --tb=native -p no:cacheprovider -p compat_tests.celery_suite.plugin -p celery_docket.contrib.pytest
"""


def read_expected(path: Path = EXPECTED) -> dict[str, str]:
    """The listed test ids and their reasons; a line without a reason is an error."""
    expected: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test_id, sep, reason = (part.strip() for part in line.partition("|"))
        if not sep or not reason:
            raise SystemExit(f"{path}:{number}: every entry needs '| <reason>'")
        expected[test_id] = reason
    return expected


def compare(
    outcomes: dict[str, str], expected: dict[str, str], full_run: bool
) -> tuple[list[str], list[str], list[str]]:
    """(regressions, listed tests that now pass, listed ids the run does not have)."""
    regressions = sorted(t for t, o in outcomes.items() if o == "failed" and t not in expected)
    # "flaky: ..." entries are races in the test itself: either outcome is accepted
    now_passing = sorted(
        t
        for t, o in outcomes.items()
        if o == "passed" and t in expected and not expected[t].startswith("flaky:")
    )
    stale = sorted(t for t in expected if t not in outcomes) if full_run else []
    return regressions, now_passing, stale


def summarize(outcomes: dict[str, str], expected: dict[str, str]) -> str:
    lines = []
    for file in FILES:
        counts = Counter(o for t, o in outcomes.items() if t.startswith(file))
        if not counts:
            continue
        listed = sum(1 for t in expected if t.startswith(file))
        lines.append(
            f"{file}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped, {counts['xfailed']} xfailed; "
            f"{listed} on the expected-failures list"
        )
    return "\n".join(lines)


DOC_START, DOC_END = "<!-- celery-suite:start -->", "<!-- celery-suite:end -->"


def render_block(outcomes: dict[str, str], expected: dict[str, str], version: str) -> str:
    """MIGRATING.md's table of the suite's counts per file, from one full run."""
    lines = [
        DOC_START,
        f"| Celery {version} file | tests | passed | skipped by Celery | expected failures |",
        "|---|---|---|---|---|",
    ]
    for file in FILES:
        mine = {t: o for t, o in outcomes.items() if t.startswith(file)}
        counts = Counter(mine.values())
        listed = sum(1 for t in expected if t.startswith(file))
        lines.append(
            f"| `{file.rsplit('/', 1)[-1]}` | {len(mine)} | {counts['passed']} "
            f"| {counts['skipped'] + counts['xfailed']} | {listed} |"
        )
    lines.append(DOC_END)
    return "\n".join(lines)


def update_doc(path: Path, block: str) -> None:
    text = path.read_text()
    head, found, rest = text.partition(DOC_START)
    if not found:
        raise SystemExit(f"{path} has no {DOC_START} marker")
    _, _, tail = rest.partition(DOC_END)
    path.write_text(head + block + tail)


def run_suite(suite: Path, redis_url: str, pytest_args: list[str], outcomes_file: Path) -> int:
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    env = dict(
        os.environ,
        TEST_BROKER=redis_url,
        TEST_BACKEND=redis_url,
        REDIS_HOST=host,
        REDIS_PORT=port,
        CELERY_SUITE_OUTCOMES=str(outcomes_file),
        CELERY_SUITE_EXPECTED=str(EXPECTED),
        PYTHONPATH=os.pathsep.join([str(suite), str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    (suite / "pytest.ini").write_text(PYTEST_INI)
    command = [sys.executable, "-m", "pytest", "-q", "-rN", *pytest_args]
    return subprocess.run(command, cwd=suite, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-list", action="store_true", help="rewrite the list's ids")
    parser.add_argument("--redis", help="use this Redis URL instead of starting a server")
    parser.add_argument(
        "--update-doc", metavar="MARKDOWN", help="write the counts of a full run into this file"
    )
    args, pytest_args = parser.parse_known_args(argv)
    # a SIGTERM unwinds like an error, so the redis-server we started is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    selects = any(
        a.startswith("t/") or a in ("-k", "-m") or a.startswith(("-k", "-m")) for a in pytest_args
    )
    full_run = not selects  # options such as -q or --durations still run every test
    if not any(a.startswith("t/") for a in pytest_args):
        pytest_args = [*FILES, *pytest_args]

    version = pinned_celery_version()
    suite = extract_suite(download_sdist(version, CACHE), CACHE / f"suite-{version}")
    expected = read_expected()
    with tempfile.TemporaryDirectory(prefix="celery-suite-") as tmp:
        outcomes_file = Path(tmp) / "outcomes.json"
        if args.redis:
            run_suite(suite, args.redis, pytest_args, outcomes_file)
        else:
            sys.path.insert(0, str(REPO))
            from tests.redis_server import RedisServer

            server = RedisServer().start()
            try:
                run_suite(suite, server.url, pytest_args, outcomes_file)
            finally:
                server.stop()
        if not outcomes_file.exists():
            print("the suite recorded no outcomes (did it collect?)", file=sys.stderr)
            return 2
        outcomes = json.loads(outcomes_file.read_text())

    print(f"\n== Celery {version}'s integration suite on celery_docket")
    print(summarize(outcomes, expected))
    if args.update_doc and full_run:
        update_doc(Path(args.update_doc), render_block(outcomes, expected, version))
    if args.write_list:
        failing = {t: expected.get(t, "TODO: reason") for t, o in outcomes.items() if o == "failed"}
        kept = {t: r for t, r in expected.items() if t not in outcomes}
        rows = sorted({**kept, **failing}.items())
        EXPECTED.write_text("".join(f"{t} | {r}\n" for t, r in rows))
        print(f"wrote {len(rows)} entries to {EXPECTED}")
        return 0
    regressions, now_passing, stale = compare(outcomes, expected, full_run)
    for title, ids in (
        ("failed but not on the expected-failures list (regressions)", regressions),
        ("on the expected-failures list but passed (remove them)", now_passing),
        ("on the expected-failures list but not in the suite", stale),
    ):
        if ids:
            print(f"\n{len(ids)} {title}:")
            print("\n".join(f"  {t}" for t in ids))
    return 1 if regressions or now_passing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
