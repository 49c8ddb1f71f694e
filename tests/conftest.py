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


def _defined_in_a_test(callback: object) -> bool:
    """Whether a finalizer registers a function defined inside a test (``<locals>``)."""
    for cell in getattr(callback, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(value) and "<locals>" in getattr(value, "__qualname__", ""):
            return True
    return False


@pytest.fixture(autouse=True)
def isolate_shared_tasks() -> Iterator[None]:
    """A ``@shared_task`` defined inside a test is bound to every app finalized later, as in
    Celery; without this, one test's task would land, as a duplicate name, in the next
    test's app. Module-level shared tasks stay registered (their modules stay imported)."""
    from celery_docket import _state

    before = list(_state._on_app_finalizers)
    yield
    _state._on_app_finalizers[:] = [
        cb for cb in _state._on_app_finalizers if cb in before or not _defined_in_a_test(cb)
    ]


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


def _persistent_keys(url: str) -> int:
    """Keys without a TTL, over every database of the server (``INFO keyspace``: one read)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        space = client.info("keyspace")
    finally:
        client.close()
    return sum(int(db["keys"]) - int(db.get("expires", 0)) for db in space.values())


def _new_persistent_keys(url: str, limit: int = 20) -> list[str]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        found = []
        for key in client.scan_iter(count=1000):
            if client.ttl(key) == -1:
                found.append(key.decode(errors="replace"))
                if len(found) >= limit:
                    break
        return found
    finally:
        client.close()


@pytest.fixture(autouse=True)
def no_leaked_keys(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on the shared Redis leaves no key without a TTL behind: work, streams and
    records it made are deleted with its processes (results may stay: they expire).

    Measured on the server CI names (``CELERY_DOCKET_TEST_REDIS``), around every test, so
    tests that reach Redis through a parametrized fixture are covered too."""
    url = os.environ.get("CELERY_DOCKET_TEST_REDIS")
    if not url and "redis_server_url" in request.fixturenames:
        url = str(request.getfixturevalue("redis_server_url"))
    if not url or request.node.get_closest_marker("leaves_keys"):
        yield
        return
    before = _persistent_keys(url)
    yield
    after = _persistent_keys(url)
    if after > before:
        pytest.fail(
            f"{after - before} key(s) without a TTL left behind, e.g. {_new_persistent_keys(url)}",
            pytrace=False,
        )


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test (on the shared
    Redis, when the test used it)."""
    value = f"t{uuid.uuid4().hex[:10]}"
    yield value
    if "redis_server_url" in request.fixturenames:
        delete_prefixed(str(request.getfixturevalue("redis_server_url")), value)


def delete_prefixed(url: str, prefix: str) -> None:
    """Delete every key of ``prefix`` (``<prefix>:...`` and ``{<prefix>:...}...``)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for pattern in (f"{prefix}:*", f"{{{prefix}:*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
    finally:
        client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs twice: on memory:// and on a real redis-server."""
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex[:8]}"
    return str(request.getfixturevalue("redis_server_url"))
