"""pytest plugin loaded into the Celery-suite run: outcomes to a file, bounded waits.

The outcome of each test id (``passed``, ``failed``, ``skipped`` or ``xfailed``) is written as
JSON to ``$CELERY_SUITE_OUTCOMES`` when the session ends. A failing setup or teardown counts as
``failed``. Celery's own ``@flaky`` tests carry a 300 s timeout; ``$CELERY_SUITE_TIMEOUT``
caps every test's timeout so one hang cannot eat the CI budget, and
``$CELERY_SUITE_LISTED_TIMEOUT`` the timeout of tests on the expected-failures list. Reruns are not installed and
not counted: a test passes on its first run or it fails.
"""

from __future__ import annotations

import json
import os

import pytest

_outcomes: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "flaky(reruns, reruns_delay, cause): Celery's rerun marker (reruns are not run here)",
        "amqp: needs RabbitMQ",
    ):
        config.addinivalue_line("markers", line)


def _listed() -> set[str]:
    """Ids on the expected-failures list (``$CELERY_SUITE_EXPECTED``)."""
    path = os.environ.get("CELERY_SUITE_EXPECTED")
    if not path or not os.path.exists(path):
        return set()
    with open(path) as fh:
        return {
            line.partition("|")[0].strip()
            for line in fh
            if line.strip() and not line.lstrip().startswith("#")
        }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    cap = float(os.environ.get("CELERY_SUITE_TIMEOUT", "60"))
    # a listed test is expected to fail: a shorter bound keeps its wait from eating CI time
    listed_cap = float(os.environ.get("CELERY_SUITE_LISTED_TIMEOUT", str(cap)))
    listed = _listed()
    for item in items:
        bound = listed_cap if item.nodeid in listed else cap
        marker = item.get_closest_marker("timeout")
        current = None
        if marker is not None:
            current = marker.kwargs.get("timeout", marker.args[0] if marker.args else None)
        if current is None or float(current) > bound:
            item.add_marker(pytest.mark.timeout(bound), append=False)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    previous = _outcomes.get(report.nodeid)
    if report.failed:
        outcome = "failed"
    elif report.skipped:
        outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    elif report.when == "call":
        outcome = "passed"
    else:
        return
    if previous == "failed" or (previous in ("skipped", "xfailed") and outcome == "passed"):
        return
    _outcomes[report.nodeid] = outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("CELERY_SUITE_OUTCOMES")
    if target:
        with open(target, "w") as fh:
            json.dump(dict(sorted(_outcomes.items())), fh, indent=1)
