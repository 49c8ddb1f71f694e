"""Redis Cluster: the ``redis+cluster://`` URL and a ``RedisCluster`` client for it.

``redis+cluster://[user:pw@]h1:p1[,h2:p2...][/0]`` names some (any) of the cluster's nodes;
redis-py asks them for the slot map and follows ``MOVED``/``ASK`` redirections itself. A
cluster has database 0 only, so any other db is refused rather than silently ignored.
Each node gets a blocking pool, so exhaustion is back-pressure as on a single server.

What cluster mode changes in the engine (each Lua script touches one slot; the queue's hash
tag ``{<prefix>:<queue>}`` puts all of a queue's keys in one):

- pipelines send ``EVALSHA`` and ``PUBLISH`` through ``execute_command`` (redis-py blocks the
  named methods in a cluster pipeline) and load a lost script on every primary (``lua``);
- results: the commit scripts cannot write ``celery-task-meta-<id>`` (another slot), so they
  write it into the queue's outbox atomically with the ack, and a second step copies it out
  (``outbox``);
- once tokens live under the queue's tag (``QueueKeys.once``);
- a worker of several queues reads them one slot at a time (``worker.read``);
- Celery-cutover hand-over and ``WAIT`` durable enqueue are refused (cross-slot, per-node).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster

from .addresses import host_port

DEFAULT_PORT = 6379
SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


def is_cluster(client: Any) -> bool:
    """True for a ``RedisCluster`` (or its pipeline): the engine's cluster code paths."""
    return isinstance(client, RedisCluster)


def mget(client: Any, keys: list[str]) -> list[Any]:
    """``MGET`` of keys in any slots: on a cluster, one ``MGET`` per slot (redis-py's
    ``mget_nonatomic``, values in the keys' order); on one server, plain ``MGET``."""
    if not keys:
        return []
    if is_cluster(client):
        return list(client.mget_nonatomic(keys))
    return list(client.mget(keys))


def parse_url(url: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """(nodes, username, password) of ``redis+cluster://[user:pw@]h1:p1,h2:p2[/0]``."""
    parts = urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for chunk in hosts.split(","):
        if not chunk:
            continue
        nodes.append(host_port(chunk, url, "cluster node", DEFAULT_PORT))
    if not nodes:
        raise ValueError(f"cluster URL names no node: {url!r}")
    db = parts.path.strip("/")
    if db not in ("", "0"):
        raise ValueError(f"a Redis Cluster has database 0 only, not {db!r}: {url!r}")
    user, _, password = auth.partition(":")
    return nodes, unquote(user) or None, unquote(password) or None


def open_cluster(
    url: str,
    *,
    pool_options: Mapping[str, Any],
    tls: dict[str, Any] | None,
) -> Any:
    """A ``RedisCluster`` of the nodes in ``url``; ``pool_options`` as ``connection.connect``
    builds them (``max_connections`` and the pool ``timeout`` apply per node)."""
    nodes, username, password = parse_url(url)
    options: dict[str, Any] = {
        k: v
        for k, v in pool_options.items()
        if k in ("max_connections", "timeout", "socket_timeout", "health_check_interval")
    }
    if username is not None:
        options["username"] = username
    if password is not None:
        options["password"] = password
    secure = tls is not None or urlsplit(url).scheme == "rediss+cluster"
    options.update(tls or {})
    # redis-py gives each node a pool of ``connection_pool_class`` only when the client is
    # made from a URL (else a plain pool that raises when exhausted): so the first node is
    # named by URL and the others as startup nodes.
    first, rest = nodes[0], nodes[1:]
    make: Any = RedisCluster  # redis-py's constructors are untyped
    node: Any = ClusterNode
    return make(
        url=f"{'rediss' if secure else 'redis'}://{first[0]}:{first[1]}",
        startup_nodes=[node(h, p) for h, p in rest],
        connection_pool_class=redis.BlockingConnectionPool,
        **options,
    )


__all__ = ["SCHEMES", "is_cluster", "is_cluster_url", "mget", "open_cluster", "parse_url"]
