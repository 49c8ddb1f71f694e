"""Other Redis task queues, one module each, measured the way compare.py measures celery_docket.

Every peer module defines, at import, an app on ``BENCH_BROKER_URL`` with two tasks, ``noop``
(returns nothing, results off) and ``echo`` (returns its argument), and four functions the
drain needs: ``prefill(n)``, ``remaining(r)`` (queued + in flight, from Redis),
``worker_commands(url)`` (the library's own worker CLI, 2 worker processes in all) and
``DIST`` (its PyPI name). A peer whose library is not installed raises ImportError on import
and is skipped with a note.
"""

from __future__ import annotations

PEERS = ("huey", "dramatiq", "streaq", "pydocket", "ardiq")
"""Peer names; the module of each is ``benchmarks.peers.<name>_peer``."""
