"""Sentinel and TLS together: master, replica and sentinels that speak only TLS (replication
too). Celery's settings: ``broker_use_ssl`` for the master's connections, ``sentinel_kwargs``
for the sentinels'. A task runs, the master is killed, a task runs again on the promoted replica."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_docket import Celery
from celery_docket.worker import WorkController
from tests.topology import MASTER_NAME, Certificates, SentinelTopology, client

pytestmark = [pytest.mark.redis, pytest.mark.topology]


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[SentinelTopology]:
    t = SentinelTopology(tls=Certificates.generate(tmp_path / "certs")).start()
    try:
        yield t
    finally:
        t.stop()


def test_tasks_run_across_a_failover_on_a_tls_only_sentinel_setup(
    topology: SentinelTopology, prefix: str
) -> None:
    assert topology.tls is not None
    ca = topology.tls.ca
    url = topology.url
    app = Celery(f"ts{uuid.uuid4().hex[:6]}", broker=url, backend=url, set_as_current=False)
    options = {"master_name": MASTER_NAME, "sentinel_kwargs": {"ssl": True, "ssl_ca_certs": ca}}
    use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": ca}
    app.conf.update(
        broker_transport_options=options,
        result_backend_transport_options=options,
        broker_use_ssl=use_ssl,
        redis_backend_use_ssl=use_ssl,
        docket_key_prefix=prefix,
    )

    @app.task(name="ts.add")
    def add(x: int, y: int) -> int:
        return x + y

    w = WorkController(app, pool="threads", concurrency=2, setup_logging=False).start_in_thread()
    try:
        first = add.delay(1, 2)
        assert first.get(timeout=10) == 3
        old = topology.master_port()
        new = topology.failover(kill=True)
        assert new != old
        after = add.delay(2, 3)
        assert after.get(timeout=20) == 5
    finally:
        w.stop()
        app.close()
    # the result written after the failover is on the new master, read over TLS
    stored = client(new, topology.tls).get(f"celery-task-meta-{after.id}")
    assert stored is not None and b'"SUCCESS"' in stored
