"""Open Redis by URL: real servers (redis, rediss, unix, redis+sentinel) or ``memory://``.

``memory://[name]`` is an in-process fakeredis server shared by every client of this process
that names it, so a producer and a worker in one process see the same data with no Redis
installed. fakeredis returns at once from ``XREADGROUP BLOCK``, so on memory the worker waits
on a local condition that every enqueue in this process signals instead of spinning.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

import redis

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
    _signal: threading.Condition | None = field(default=None, repr=False)

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

    def close(self) -> None:
        self.client.close()


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


def _sentinel_backend(url: str, max_connections: int, socket_timeout: float | None) -> Backend:
    """``redis+sentinel://[:pw@]h1:p1,h2:p2/master_name[/db]``."""
    from redis import sentinel as redis_sentinel

    make_sentinel: Any = redis_sentinel.Sentinel

    parsed = urlparse(url)
    netloc = parsed.netloc
    password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[-1]) or None
    hosts = []
    for part in netloc.split(","):
        host, _, port = part.partition(":")
        hosts.append((host, int(port or 26379)))
    path = [p for p in parsed.path.split("/") if p]
    if not path:
        raise ValueError(f"sentinel URL needs a master name: {url!r}")
    master = path[0]
    db = int(path[1]) if len(path) > 1 else 0
    sentinel = make_sentinel(hosts, socket_timeout=socket_timeout)
    client = sentinel.master_for(
        master,
        db=db,
        password=password,
        socket_timeout=socket_timeout,
        max_connections=max_connections,
    )
    return Backend(url=url, client=client)


def connect(
    url: str,
    *,
    max_connections: int = 16,
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    pool_timeout: float = 30.0,
) -> Backend:
    """Open ``url``. The pool blocks when exhausted instead of raising.

    redis-py's default pool raises ``MaxConnectionsError`` when every connection is busy; a
    worker that treats that as an outage strands the messages it already read. A blocking
    pool sized to the worker's concurrency turns exhaustion into back-pressure.
    """
    scheme = urlparse(url).scheme
    if scheme == "memory":
        parsed = urlparse(url)
        name = (parsed.netloc + parsed.path).strip("/") or "default"
        return _memory_backend(url, name)
    if scheme == "redis+sentinel":
        return _sentinel_backend(url, max_connections, socket_timeout)
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"unsupported broker URL scheme {scheme!r} in {url!r}: "
            "use redis://, rediss://, unix://, redis+sentinel:// or memory://"
        )
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": pool_timeout,
        "health_check_interval": 30,
    }
    if socket_timeout is not None:
        options["socket_timeout"] = socket_timeout
    pool = redis.BlockingConnectionPool.from_url(url, **options)
    return Backend(url=url, client=redis.Redis(connection_pool=pool))
