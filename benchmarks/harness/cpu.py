"""CPU meters: the machine's, this process's, Redis's, and other people's share of it.

On a shared 2-core machine the absolute rates mean little unless the bench can say how much
CPU went to processes that are not part of the run; ``LoadMeter`` reports that in cores.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from typing import Any

from .procs import proc_cpu_seconds


def redis_cpu_seconds(r: Any) -> float:
    """redis-server's own user+sys seconds (``INFO cpu``), all its threads."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def system_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            parts = fh.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def children_cpu_seconds() -> float:
    """user+sys of this process's reaped children (getrusage), for children that have exited."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class LoadMeter:
    """Cores kept busy by processes that are not ours (ours: this process, ``pids``, Redis).

    Measured from /proc/stat over the meter's life; NaN where /proc is missing or a pid is gone.
    """

    def __init__(self, r: Any, pids: Sequence[int] = ()) -> None:
        self.r = r
        self.pids = list(pids)
        self.t0 = time.perf_counter()
        self.sys0 = system_busy_seconds()
        self.own0 = own_cpu_seconds()
        self.redis0 = redis_cpu_seconds(r)
        self.kids0 = [proc_cpu_seconds(p) for p in self.pids]

    def pids_cpu(self) -> float | None:
        """CPU the tracked pids used since the meter started (None if one is gone)."""
        total = 0.0
        for pid, c0 in zip(self.pids, self.kids0):
            c1 = proc_cpu_seconds(pid)
            if c0 is None or c1 is None:
                return None
            total += c1 - c0
        return total

    def redis_cpu(self) -> float:
        return redis_cpu_seconds(self.r) - self.redis0

    def cores(self) -> float:
        elapsed = time.perf_counter() - self.t0
        sys1, own1 = system_busy_seconds(), own_cpu_seconds()
        redis = self.redis_cpu()
        kids = self.pids_cpu()
        if self.sys0 is None or sys1 is None or kids is None or elapsed <= 0:
            return float("nan")
        ours = (own1 - self.own0) + redis + kids
        return max(0.0, (sys1 - self.sys0) - ours) / elapsed
