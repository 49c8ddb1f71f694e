"""The engine's fault tests, run again through a Sentinel URL: worker SIGKILL recovery and
four workers racing one perpetual, on a master + replica + 3 sentinels.

The tests are the ones in ``tests/fault`` (imported, so they are collected here too); only
the fixtures differ: the worker subprocesses and the test's own client reach the master as
``redis+sentinel://s1,s2,s3/mymaster/0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_docket.engine import Docket
from tests.fault.harness import Cluster, CommitWatcher, Producer, test_docket
from tests.fault.proc_worker import Ledger
from tests.fault.test_scheduling import test_four_workers_race_one_perpetual  # noqa: F401
from tests.fault.test_worker_kill import test_sigkill_mid_task_loses_nothing  # noqa: F401
from tests.topology import MASTER_NAME, SentinelTopology

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.topology, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def sentinel_url() -> Iterator[str]:
    topology = SentinelTopology().start()
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in topology.sentinels)
    try:
        yield f"redis+sentinel://{hosts}/{MASTER_NAME}/0"
    finally:
        topology.stop()


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ledger"
    d.mkdir()
    return d


@pytest.fixture
def cluster(sentinel_url: str, prefix: str, ledger_dir: Path) -> Iterator[Cluster]:
    c = Cluster(sentinel_url, prefix, ledger_dir)
    try:
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def docket(sentinel_url: str, prefix: str) -> Iterator[Docket]:
    d = test_docket(sentinel_url, prefix)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def watcher(docket: Docket, ledger_dir: Path) -> Iterator[CommitWatcher]:
    with CommitWatcher(docket, Ledger(str(ledger_dir), "test")) as w:
        yield w


@pytest.fixture
def producer(docket: Docket, ledger_dir: Path) -> Producer:
    return Producer(docket, Ledger(str(ledger_dir), "test"))
