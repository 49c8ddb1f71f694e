"""Redis behind Sentinel: Celery's URL forms, and a client that follows a failover.

Two spellings name the same thing:

- Celery's: ``sentinel://[user:pw@]h1:26379[/db];sentinel://h2:26379;...`` with the master's
  name in the transport options (``{"master_name": "mymaster"}``). Like kombu and Celery's
  result backend, the user, password and db come from the first address; ``sentinel_kwargs``
  (e.g. the sentinels' own password) and ``min_other_sentinels`` are passed to redis-py.
- Ours: ``redis+sentinel://[:pw@]h1:p1,h2:p2/master_name[/db]``.

The client asks the sentinels for the master on every new connection. After a failover the
old master's connections fail (killed, or ``READONLY`` once it is a replica, which redis-py
turns into a connection error), the caller retries as it does for any lost connection, and
the next connection goes to the new master: nobody restarts. The pool blocks when exhausted,
as the plain pool does (see ``connection.connect``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis import sentinel as redis_sentinel
from redis.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from .addresses import host_port

DEFAULT_PORT = 26379


MASTER_CHECK_SECONDS = 1.0
"""How often a pool asks the Sentinels whether the master moved (at most, while in use)."""

SENTINEL_TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
"""Defaults for talking to the Sentinels: a frozen Sentinel must not hang a publish."""


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's master discovery with the blocking pool's back-pressure, re-checked.

    redis-py asks the Sentinels only when it opens a connection. After ``SENTINEL FAILOVER``
    the old master keeps taking writes on the connections already open until Sentinel
    reconfigures it (a second or more later), and those writes are then thrown away. So at
    most every ``MASTER_CHECK_SECONDS`` a checkout asks again; once the answer changes, idle
    connections are closed and busy ones are closed when they come back.
    """

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        self._checked_at = 0.0
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if now - self._checked_at >= MASTER_CHECK_SECONDS:
            self._checked_at = now
            try:
                self.get_master_address()  # type: ignore[no-untyped-call]
            except redis.ConnectionError:
                pass  # no master known right now: connecting says so
        return super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]


@dataclass
class SentinelTarget:
    """Where the sentinels are and which master to ask them for."""

    hosts: list[tuple[str, int]]
    master: str | None
    db: int = 0
    username: str | None = None
    password: str | None = None


def _host_port(netloc: str, url: str) -> tuple[str, int]:
    return host_port(netloc, url, "sentinel address", DEFAULT_PORT)


def _db(text: str, url: str) -> int:
    try:
        return int(text or 0)
    except ValueError:
        raise ValueError(f"bad database number {text!r} in {url!r}") from None


def parse_celery_url(url: str) -> SentinelTarget:
    """``sentinel://…;sentinel://…``: one address per chunk; credentials and db from the first."""
    chunks = [c.strip() for c in url.split(";") if c.strip()]
    hosts: list[tuple[str, int]] = []
    first = None
    for chunk in chunks:
        parts = urlsplit(chunk)
        if parts.scheme != "sentinel":
            raise ValueError(f"every address of a sentinel URL must be sentinel://, not {chunk!r}")
        netloc = parts.netloc.rpartition("@")[2]
        hosts.append(_host_port(netloc, url))
        if first is None:
            first = parts
    if first is None:
        raise ValueError(f"sentinel URL names no sentinel: {url!r}")
    return SentinelTarget(
        hosts=hosts,
        master=None,
        db=_db(first.path.strip("/"), url),
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
    )


def parse_native_url(url: str) -> SentinelTarget:
    """``redis+sentinel://[:pw@]h1:p1,h2:p2/master_name[/db]``."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    hosts = [_host_port(p, url) for p in netloc.split(",") if p]
    path = [p for p in parts.path.split("/") if p]
    if not hosts:
        raise ValueError(f"sentinel URL names no sentinel: {url!r}")
    if not path:
        raise ValueError(f"sentinel URL needs a master name: {url!r}")
    auth = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    user, _, password = auth.partition(":")
    return SentinelTarget(
        hosts=hosts,
        master=path[0],
        db=_db(path[1] if len(path) > 1 else "", url),
        username=unquote(user) or None,
        password=unquote(password) or None,
    )


def is_sentinel_url(url: str) -> bool:
    return url.startswith(("sentinel://", "redis+sentinel://"))


def open_master(
    url: str,
    *,
    transport_options: Mapping[str, Any] | None,
    tls: dict[str, Any] | None,
    pool_options: dict[str, Any],
) -> tuple[Any, Any]:
    """A client of the master named by ``url`` (+ options), and the Sentinel it asks."""
    options = dict(transport_options or {})
    target = parse_celery_url(url) if url.startswith("sentinel://") else parse_native_url(url)
    master = options.get("master_name") or target.master
    if not master:
        raise ValueError(
            f"{url.split(':')[0]}:// needs the master's name: set "
            "broker_transport_options={'master_name': ...} (or "
            "result_backend_transport_options for result_backend)"
        )
    socket_options = {
        k: v for k, v in pool_options.items() if k in ("socket_timeout", "socket_connect_timeout")
    }
    make_sentinel: Any = redis_sentinel.Sentinel  # untyped in redis-py
    sentinel = make_sentinel(
        target.hosts,
        min_other_sentinels=int(options.get("min_other_sentinels", 0)),
        sentinel_kwargs={**SENTINEL_TIMEOUTS, **(options.get("sentinel_kwargs") or {})},
        **socket_options,
    )
    credentials = {
        k: v
        for k, v in (("username", target.username), ("password", target.password))
        if v is not None
    }
    extra: dict[str, Any] = dict(tls or {})
    if tls is not None:
        extra["connection_class"] = SentinelManagedSSLConnection
    client = sentinel.master_for(  # a redis.Redis on a BlockingSentinelPool
        master,
        redis_class=redis.Redis,
        connection_pool_class=BlockingSentinelPool,
        db=target.db,
        **credentials,
        **pool_options,
        **extra,
    )
    return client, sentinel
