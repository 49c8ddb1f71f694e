"""Celery's connection settings turned into ``engine.connect`` options, for broker and results.

Celery spreads how to reach Redis over several settings (the URL, ``*_transport_options``
for Sentinel, ``broker_use_ssl``/``redis_backend_use_ssl`` for TLS); the app, the CLI's broker
check and the result store all need the same reading of them, so it lives here once.
"""

from __future__ import annotations

from typing import Any


def broker_options(conf: Any) -> dict[str, Any]:
    """``connect()`` keyword arguments for ``broker_url``."""
    return {
        "transport_options": dict(conf.get("broker_transport_options") or {}),
        "ssl": conf.get("broker_use_ssl") or None,
    }


def backend_options(conf: Any) -> dict[str, Any]:
    """``connect()`` keyword arguments for ``result_backend``."""
    return {
        "transport_options": dict(conf.get("result_backend_transport_options") or {}),
        "ssl": conf.get("redis_backend_use_ssl") or None,
    }


def durable_enqueue(conf: Any) -> tuple[int, int]:
    """(replicas, timeout ms) for ``WAIT`` after each enqueue; (0, _) leaves it off."""
    replicas = int(conf.get("docket_enqueue_wait_replicas") or 0)
    timeout = float(conf.get("docket_enqueue_wait_timeout") or 1.0)
    return replicas, max(1, int(timeout * 1000))


def queue_shards(conf: Any) -> dict[str, int]:
    """``docket_queue_shards`` read strictly: a queue name to a shard count of at least 1
    (a typo'd count must fail at start, not spread work over an unexpected number)."""
    raw = conf.get("docket_queue_shards") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"docket_queue_shards must map queue names to counts, not {raw!r}")
    out: dict[str, int] = {}
    for queue, count in raw.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"docket_queue_shards[{queue!r}] must be an int >= 1, not {count!r}")
        out[str(queue)] = count
    return out
