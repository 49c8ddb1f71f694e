"""TLS: ``rediss://`` with Celery's ``broker_use_ssl``/``redis_backend_use_ssl`` dicts and the
``ssl_cert_reqs=CERT_REQUIRED`` URL form, against a real redis-server that speaks only TLS and
demands client certificates, with a CA generated in the test's directory."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from celery_docket import Celery
from celery_docket.engine import Docket
from celery_docket.engine.connection import connect
from celery_docket.worker import WorkController
from tests.redis_server import RedisServer
from tests.topology import Certificates, tls_server

pytestmark = [pytest.mark.redis, pytest.mark.topology]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates.generate(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server(certs: Certificates) -> Iterator[RedisServer]:
    s = tls_server(certs, client_certs=True)
    try:
        yield s
    finally:
        s.kill()


def _use_ssl(certs: Certificates, reqs: object = ssl.CERT_REQUIRED) -> dict[str, object]:
    return {
        "ssl_cert_reqs": reqs,
        "ssl_ca_certs": certs.ca,
        "ssl_certfile": certs.cert("client"),
        "ssl_keyfile": certs.key("client"),
    }


def test_celery_app_with_broker_use_ssl_and_redis_backend_use_ssl(
    server: RedisServer, certs: Certificates, prefix: str
) -> None:
    broker = f"rediss://127.0.0.1:{server.port}/0"
    backend = f"rediss://127.0.0.1:{server.port}/1"
    app = Celery(f"t{uuid.uuid4().hex[:6]}", broker=broker, backend=backend, set_as_current=False)
    app.conf.update(
        broker_use_ssl=_use_ssl(certs),
        redis_backend_use_ssl=_use_ssl(certs, "CERT_REQUIRED"),
        docket_key_prefix=prefix,
    )

    @app.task(name="t.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    w = WorkController(app, pool="threads", concurrency=2, setup_logging=False).start_in_thread()
    try:
        assert mul.delay(6, 7).get(timeout=10) == 42
        t0 = time.monotonic()
        later = mul.apply_async((2, 2), countdown=0.5)
        assert later.get(timeout=10) == 4 and time.monotonic() - t0 >= 0.45
    finally:
        w.stop()
        app.close()
    direct = connect(backend, ssl=_use_ssl(certs)).client
    assert b'"SUCCESS"' in direct.get(f"celery-task-meta-{later.id}")
    assert direct.connection_pool.connection_kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_url_query_form_with_celery_spelling(
    server: RedisServer, certs: Certificates, prefix: str
) -> None:
    query = "&".join(
        f"{k}={quote(str(v), safe='')}"
        for k, v in {**_use_ssl(certs), "ssl_cert_reqs": "CERT_REQUIRED"}.items()
    )
    url = f"rediss://127.0.0.1:{server.port}/2?{query}"
    docket = Docket(url, prefix=prefix)
    try:
        docket.task(lambda x: x, name="ident")
        assert docket.add("ident", key="one")(1).added
        assert not docket.add("ident", key="one")(1).added
    finally:
        docket.close()


def test_a_redis_url_with_an_ssl_dict_speaks_tls(server: RedisServer, certs: Certificates) -> None:
    """As in Celery: ``broker_use_ssl`` on a ``redis://`` URL turns TLS on."""
    assert connect(f"redis://127.0.0.1:{server.port}/0", ssl=_use_ssl(certs)).client.ping()


def test_the_server_is_verified_by_default(server: RedisServer, certs: Certificates) -> None:
    """``rediss://`` without a CA checks the server against the system's CAs, which do not
    know our test CA: refused. ``CERT_NONE`` says not to check, and then it connects."""
    url = f"rediss://127.0.0.1:{server.port}/0"
    client_cert = {"ssl_certfile": certs.cert("client"), "ssl_keyfile": certs.key("client")}
    with pytest.raises(redis.ConnectionError, match="(?i)certificate verify failed"):
        connect(url, ssl=client_cert).client.ping()
    insecure = {**client_cert, "ssl_cert_reqs": "CERT_NONE"}
    assert connect(url, ssl=insecure).client.ping()


def test_without_a_client_certificate_the_server_refuses(
    server: RedisServer, certs: Certificates
) -> None:
    url = f"rediss://127.0.0.1:{server.port}/0"
    with pytest.raises(redis.ConnectionError):
        connect(url, ssl={"ssl_cert_reqs": "CERT_REQUIRED", "ssl_ca_certs": certs.ca}).client.ping()


def test_the_cli_broker_check_uses_broker_use_ssl(
    server: RedisServer, certs: Certificates, tmp_path: Path
) -> None:
    from celery_docket.cli.broker import check_broker

    app = Celery("cli", broker=f"rediss://127.0.0.1:{server.port}/0", set_as_current=False)
    app.conf.broker_use_ssl = _use_ssl(certs)
    check_broker(app.broker_url, conf=app.conf)  # raises a ClickException on failure


@pytest.mark.parametrize(
    "options, message",
    [
        ({"ssl_cert_reqs": "CERT_SOMETIMES"}, "ssl_cert_reqs"),
        ({"ssl_ca_cert": "/x"}, "unknown TLS option 'ssl_ca_cert'"),
    ],
)
def test_bad_tls_options_are_refused_at_once(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        connect("rediss://127.0.0.1:1/0", ssl=options)
