"""Redis-side bookkeeping for benchmarks: cleanup of what a run wrote, command statistics."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def with_db(url: str, db: int) -> str:
    """``url`` pointed at database ``db``."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def _unlink_all(r: Any, keys: Any, delete: bool = False) -> int:
    n = 0
    batch: list[bytes] = []
    drop = r.delete if delete else r.unlink
    for key in keys:
        batch.append(key)
        if len(batch) >= 1000:
            n += drop(*batch)
            batch = []
    if batch:
        n += drop(*batch)
    return n


def wipe(r: Any) -> int:
    """Delete every key of this database (the bench owns it: it was empty at the start)."""
    return _unlink_all(r, r.scan_iter(count=1000))


def delete_prefix(r: Any, prefix: str) -> int:
    """Delete every key containing ``prefix`` (all keys of this run do; nothing else does)."""
    return _unlink_all(r, r.scan_iter(match=f"*{prefix}*", count=1000), delete=True)


def command_stats(r: Any) -> dict[str, tuple[int, int]]:
    """INFO commandstats as {command: (calls, usec)} (commands run by scripts included)."""
    out = {}
    for key, value in r.info("commandstats").items():
        if key.startswith("cmdstat_") and isinstance(value, dict):
            out[key[len("cmdstat_") :]] = (int(value["calls"]), int(value["usec"]))
    return out


def stats_delta(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """Per-command (calls, usec) between two :func:`command_stats` readings."""
    out = {}
    for name, (calls, usec) in after.items():
        c0, u0 = before.get(name, (0, 0))
        if calls - c0:
            out[name] = (calls - c0, usec - u0)
    return out
