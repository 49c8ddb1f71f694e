"""Start and stop throwaway redis-server processes on loopback ports for tests.

The launcher is the benchmarks' one (``benchmarks/harness/redis_server.py``, which imports
nothing else from benchmarks/); this module keeps the name the tests import.
"""

from __future__ import annotations

from benchmarks.harness.redis_server import RedisServer, free_port

__all__ = ["RedisServer", "free_port"]
