"""Fixtures of the fault-injection tests: a worker cluster, a ledger, a commit watcher."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_docket.engine import Docket
from tests.fault.harness import Cluster, CommitWatcher, Producer, test_docket
from tests.fault.proc_worker import Ledger


@pytest.fixture
def env(redis_server_url: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    """The environment of the CLI processes running ``tests/fault/celery_app.py``."""
    return {
        **os.environ,
        "CD_FAULT_BROKER": redis_server_url,
        "CD_FAULT_PREFIX": prefix,
        "CD_FAULT_LEDGER": str(tmp_path / "ledger.txt"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ledger"
    d.mkdir()
    return d


@pytest.fixture
def test_ledger(ledger_dir: Path) -> Ledger:
    return Ledger(str(ledger_dir), "test")


@pytest.fixture
def cluster(redis_server_url: str, prefix: str, ledger_dir: Path) -> Iterator[Cluster]:
    c = Cluster(redis_server_url, prefix, ledger_dir)
    try:
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def docket(redis_server_url: str, prefix: str) -> Iterator[Docket]:
    d = test_docket(redis_server_url, prefix)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def watcher(docket: Docket, test_ledger: Ledger) -> Iterator[CommitWatcher]:
    with CommitWatcher(docket, test_ledger) as w:
        yield w


@pytest.fixture
def producer(docket: Docket, test_ledger: Ledger) -> Producer:
    return Producer(docket, test_ledger)
