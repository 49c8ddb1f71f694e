"""Open Redis by URL: real servers (redis, rediss, unix, sentinel) or ``memory://``.

``memory://[name]`` is an in-process fakeredis server shared by every client of this process
that names it, so a producer and a worker in one process see the same data with no Redis
installed. fakeredis returns at once from ``XREADGROUP BLOCK``, so on memory the worker waits
on a local condition that every enqueue in this process signals instead of spinning.

Sentinel URLs (Celery's ``sentinel://…;…`` and ``redis+sentinel://``) are read in
``sentinel``, Redis Cluster's ``redis+cluster://h1:p1,h2:p2`` in ``cluster``, Celery's TLS
options (``broker_use_ssl`` and the URL query form) in ``tls``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import redis

from . import cluster, sentinel, tls

_memory_servers: dict[str, Any] = {}
_memory_signals: dict[str, threading.Condition] = {}
_memory_lock = threading.Lock()


DEFAULT_SOCKET_TIMEOUT = 5.0
"""Seconds a command may wait for its reply. A frozen server (SIGSTOP, a stalled VM) keeps
its TCP connections open and never answers: without a bound every thread waits forever.
redis-py 6+ defaults to 5 s, redis-py 5 (which we accept) to no bound, so it is set here.
The engine's longest blocking read (``XREADGROUP BLOCK``) waits a second, well inside it."""


RedisClient = Any
"""redis-py's replies are typed as unions over decode_responses; the engine always uses bytes
replies and treats the client as untyped rather than casting at every call."""


@dataclass
class Backend:
    """A Redis client plus how to wait for new work on it."""

    url: str
    client: RedisClient
    is_memory: bool = False
    is_cluster: bool = False
    _signal: threading.Condition | None = field(default=None, repr=False)
    _reopen: Callable[[], Backend] | None = field(default=None, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def notify(self) -> None:
        """Tell local waiters that work was added (memory only; Redis wakes blocked reads)."""
        if self._signal is not None:
            with self._signal:
                self._signal.notify_all()

    def wait_local(self, timeout: float) -> None:
        """Sleep until notified or ``timeout`` passes (memory only)."""
        if self._signal is not None:
            with self._signal:
                self._signal.wait(timeout)

    def reopen(self) -> Backend:
        """A new client of the same server with the same options (e.g. in a forked child)."""
        if self._reopen is None:
            raise ValueError(f"{self.url!r} cannot be reopened (an in-process server)")
        return self._reopen()

    def close(self) -> None:
        self.client.close()
        for close in self._closers:
            close()


def _memory_backend(url: str, name: str) -> Backend:
    import fakeredis

    with _memory_lock:
        server = _memory_servers.get(name)
        if server is None:
            server = fakeredis.FakeServer()
            _memory_servers[name] = server
            _memory_signals[name] = threading.Condition()
        signal = _memory_signals[name]
    client = fakeredis.FakeRedis(server=server)
    return Backend(url=url, client=client, is_memory=True, _signal=signal)


def reset_memory(name: str | None = None) -> None:
    """Forget one (or every) in-process memory server, e.g. between tests."""
    with _memory_lock:
        if name is None:
            _memory_servers.clear()
        else:
            _memory_servers.pop(name, None)


def connect(
    url: str,
    *,
    max_connections: int = 16,
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    pool_timeout: float = 30.0,
    transport_options: Mapping[str, Any] | None = None,
    ssl: Mapping[str, Any] | bool | None = None,
) -> Backend:
    """Open ``url``. The pool blocks when exhausted instead of raising.

    redis-py's default pool raises ``MaxConnectionsError`` when every connection is busy; a
    worker that treats that as an outage strands the messages it already read. A blocking
    pool sized to the worker's concurrency turns exhaustion into back-pressure.

    ``transport_options`` are Celery's ``broker_transport_options`` (Sentinel reads
    ``master_name``, ``sentinel_kwargs`` and ``min_other_sentinels``); ``ssl`` is Celery's
    ``broker_use_ssl``/``redis_backend_use_ssl`` dict (see ``tls``): given on a ``redis://``
    URL it turns TLS on, as it does in Celery.
    """
    scheme = urlparse(url).scheme
    if scheme == "memory":
        parsed = urlparse(url)
        name = (parsed.netloc + parsed.path).strip("/") or "default"
        return _memory_backend(url, name)
    if scheme not in ("redis", "rediss", "unix", "sentinel", "redis+sentinel", *cluster.SCHEMES):
        raise ValueError(
            f"unsupported broker URL scheme {scheme!r} in {url!r}: use redis://, rediss://, "
            "unix://, sentinel://, redis+sentinel://, redis+cluster:// or memory://"
        )

    def reopen() -> Backend:
        return connect(
            url,
            max_connections=max_connections,
            socket_timeout=socket_timeout,
            pool_timeout=pool_timeout,
            transport_options=transport_options,
            ssl=ssl,
        )

    bare_url, url_tls = tls.split_url(url)
    tls_options = tls.ssl_kwargs(tls.merged(url_tls, ssl))
    if tls_options is None and scheme in ("rediss", "rediss+cluster"):
        tls_options = {}
    if tls_options is not None and scheme == "unix":
        raise ValueError(f"TLS options do not apply to a unix socket: {url!r}")
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": pool_timeout,
        "health_check_interval": 30,
    }
    if socket_timeout is not None:
        options["socket_timeout"] = socket_timeout
    if sentinel.is_sentinel_url(url):
        client, manager = sentinel.open_master(
            bare_url, transport_options=transport_options, tls=tls_options, pool_options=options
        )
        return Backend(url=url, client=client, _reopen=reopen, _closers=[manager.close])
    if cluster.is_cluster_url(url):
        client = cluster.open_cluster(bare_url, pool_options=options, tls=tls_options)
        return Backend(url=url, client=client, is_cluster=True, _reopen=reopen)
    if tls_options is not None:
        options.update(tls_options, connection_class=redis.SSLConnection)
    pool = redis.BlockingConnectionPool.from_url(bare_url, **options)
    return Backend(url=url, client=redis.Redis(connection_pool=pool), _reopen=reopen)
