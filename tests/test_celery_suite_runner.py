"""The runner of Celery's own suite: import rewriting, the expected-failures list, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_tests.celery_suite.prepare import pinned_celery_version, rewrite_imports
from compat_tests.celery_suite.run import EXPECTED, compare, read_expected


def test_only_import_lines_are_rewritten() -> None:
    source = (
        "import celery\n"
        "import celery.result\n"
        "from celery import chain, group\n"
        "    from celery.canvas import StampingVisitor\n"
        "from celeryx import other\n"
        "logger = get_logger('celery.app.trace')\n"
        "name = 'celery.chord_unlock'\n"
        "assert r.name in {'celery.worker.strategy'}\n"
    )
    assert rewrite_imports(source) == (
        "import celery_docket as celery\n"
        "import celery_docket as celery; import celery_docket.result\n"
        "from celery_docket import chain, group\n"
        "    from celery_docket.canvas import StampingVisitor\n"
        "from celeryx import other\n"
        "logger = get_logger('celery.app.trace')\n"
        "name = 'celery.chord_unlock'\n"
        "assert r.name in {'celery.worker.strategy'}\n"
    )


def test_the_test_extra_pins_one_celery_version() -> None:
    version = pinned_celery_version()
    assert version.count(".") == 2 and version.split(".")[0] == "5"


def test_checked_in_list_gives_every_entry_a_reason() -> None:
    listed = read_expected(EXPECTED)
    assert listed, "the list is empty: then this test should assert that instead"
    assert all(reason and reason != "TODO: reason" for reason in listed.values())
    assert all(t.startswith("t/integration/test_") and "::" in t for t in listed)


def test_entry_without_reason_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "list.txt"
    bad.write_text("t/integration/test_tasks.py::test_tasks::test_x\n")
    with pytest.raises(SystemExit, match="reason"):
        read_expected(bad)


def test_verdicts_regression_now_passing_and_stale() -> None:
    outcomes = {"a": "failed", "b": "passed", "c": "failed", "d": "skipped"}
    expected = {"b": "why", "c": "why", "gone": "why"}
    regressions, now_passing, stale = compare(outcomes, expected, full_run=True)
    assert (regressions, now_passing, stale) == (["a"], ["b"], ["gone"])
    # a subset run cannot tell a renamed test from one it did not select
    assert compare(outcomes, expected, full_run=False)[2] == []
    # a flaky entry may pass or fail
    assert compare({"b": "passed"}, {"b": "flaky: a race"}, full_run=True) == ([], [], [])


def test_migrating_states_the_list_length_per_file() -> None:
    """MIGRATING.md's suite table names as many expected failures per file as the list has."""
    from compat_tests.celery_suite.run import DOC_END, DOC_START, FILES

    text = (Path(__file__).resolve().parents[1] / "MIGRATING.md").read_text()
    block = text.partition(DOC_START)[2].partition(DOC_END)[0]
    rows = [r for r in block.splitlines() if r.startswith("| `test_")]
    assert len(rows) == len(FILES), "run the suite with --update-doc MIGRATING.md"
    listed = read_expected(EXPECTED)
    for file, row in zip(FILES, rows):
        name = file.rsplit("/", 1)[-1]
        assert row.startswith(f"| `{name}` |")
        assert int(row.rstrip(" |").rsplit("|", 1)[-1]) == sum(t.startswith(file) for t in listed)
