"""The Celery API while Redis is down or drops the connection mid-command: typed errors
(``BrokerUnavailable``, a kombu ``OperationalError``) that say what may have happened."""

from __future__ import annotations

import shutil
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu.exceptions import OperationalError

from celery_docket import Celery
from celery_docket.exceptions import BrokerUnavailable
from tests.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(60)]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    s = RedisServer().start()
    try:
        yield s
    finally:
        s.stop()


def _app(url: str) -> Celery:
    app = Celery(f"bd{uuid.uuid4().hex[:6]}", broker=url, set_as_current=False)
    app.conf.broker_connection_retry = False

    @app.task(name="bd.add")
    def add(x: int, y: int) -> int:
        return x + y

    return app


def test_get_while_redis_is_down_raises_broker_unavailable(server: RedisServer) -> None:
    app = _app(server.url)
    r = app.tasks["bd.add"].delay(1, 2)
    server.kill()
    with pytest.raises(BrokerUnavailable) as info:
        r.get(timeout=5)
    assert isinstance(info.value, OperationalError)
    with pytest.raises(BrokerUnavailable):
        r.state
    with pytest.raises(BrokerUnavailable, match="nothing was enqueued"):
        app.tasks["bd.add"].delay(1, 2)
    app.close()


class _CuttingProxy:
    """Forwards to Redis, but closes the client's connection right after forwarding a
    command that contains ``cut`` (the command may have run: the reply is lost)."""

    def __init__(self, upstream: int, cut: bytes) -> None:
        self.upstream, self.cut = upstream, cut
        self.port = free_port()
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream))
        cutting = threading.Event()

        def back() -> None:
            try:
                while (data := up.recv(65536)) and not cutting.is_set():
                    client.sendall(data)
            except OSError:
                pass

        threading.Thread(target=back, daemon=True).start()
        try:
            while data := client.recv(65536):
                if self.cut in data:
                    cutting.set()  # the reply never reaches the client
                up.sendall(data)
                if cutting.is_set():
                    break
        except OSError:
            pass
        for s in (client, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.sock.close()


def test_connection_reset_after_the_write_says_it_may_have_been_enqueued(
    server: RedisServer,
) -> None:
    proxy = _CuttingProxy(server.port, b"XADD")
    app = _app(f"redis://127.0.0.1:{proxy.port}/0")
    try:
        with pytest.raises(BrokerUnavailable) as info:
            app.tasks["bd.add"].delay(1, 2)
        assert "may not have been enqueued" in str(info.value), str(info.value)
        assert "nothing was enqueued" not in str(info.value)
        # the client did not resend the XADD on a fresh connection: one entry, not two
        direct = redis.Redis(port=server.port)
        try:
            streams = [k for k in direct.scan_iter(match="*:stream") if direct.type(k) == b"stream"]
            assert sum(direct.xlen(k) for k in streams) == 1, streams
        finally:
            direct.close()
    finally:
        app.close()
        proxy.close()
