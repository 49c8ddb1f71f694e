"""What this process's worker has done (``celery.worker.state``).

Embedded test workers run in the test process, so tests read these sets directly, as they do
with Celery: ids of tasks that succeeded here (bounded, most recent kept), ids revoked here,
stamped-header revocations, and per-name totals.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

__all__ = (
    "LimitedSet",
    "SUCCESSFUL_MAX",
    "REVOKES_MAX",
    "active_requests",
    "all_total_count",
    "reserved_requests",
    "revoked",
    "revoked_stamps",
    "successful_requests",
    "task_ready",
    "total_count",
)

#: how many ids of succeeded (and revoked) tasks a process remembers
SUCCESSFUL_MAX = 1000
REVOKES_MAX = 50000


class LimitedSet:
    """A thread-safe set that forgets its oldest members past ``maxlen``."""

    def __init__(self, maxlen: int = 0) -> None:
        self.maxlen = maxlen
        self._data: OrderedDict[Any, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self._lock:
            self._data.pop(item, None)
            self._data[item] = None
            while self.maxlen and len(self._data) > self.maxlen:
                self._data.popitem(last=False)

    def discard(self, item: Any) -> None:
        with self._lock:
            self._data.pop(item, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def update(self, items: Any) -> None:
        for item in items:
            self.add(item)

    def __contains__(self, item: object) -> bool:
        return item in self._data

    def __iter__(self) -> Iterator[Any]:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<LimitedSet({len(self)}): maxlen={self.maxlen}>"


successful_requests = LimitedSet(maxlen=SUCCESSFUL_MAX)
revoked = LimitedSet(maxlen=REVOKES_MAX)
#: stamped-header revocations: header name -> values (revoke by stamps is not supported)
revoked_stamps: dict[str, Any] = {}
active_requests: set[Any] = set()
reserved_requests: set[Any] = set()
#: tasks run per name by this process since it started
total_count: dict[str, int] = {}
all_total_count = [0]
_count_lock = threading.Lock()


def task_ready(task_id: str, name: str, successful: bool) -> None:
    """Count a finished task and remember its id when it succeeded."""
    with _count_lock:
        total_count[name] = total_count.get(name, 0) + 1
        all_total_count[0] += 1
    if successful:
        successful_requests.add(task_id)
