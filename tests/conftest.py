"""Fixtures shared by every test: a real Redis (marker ``redis``) and the embedded default.

``CELERY_DOCKET_TEST_REDIS`` names a running server (CI starts one on a loopback port); without
it a throwaway redis-server is started if the binary exists. In CI (``CI`` set) a missing
server is a failure, not a skip. Every test gets its own key prefix, so tests never share data.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests run only when a ``-m`` expression names them (not in scripts/test.sh)."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: select with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    url = os.environ.get("CELERY_DOCKET_TEST_REDIS")
    if url:
        yield url
        return
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide redis-server (CELERY_DOCKET_TEST_REDIS or the binary)")
        pytest.skip("redis-server not installed")
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.remove()  # stop, and delete its data dir


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs twice: on memory:// and on a real redis-server."""
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex[:8]}"
    return str(request.getfixturevalue("redis_server_url"))
