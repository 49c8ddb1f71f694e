"""The run ledger: one line per task run, appended with O_APPEND (atomic for short lines)."""

from __future__ import annotations

import os
import time
from collections import Counter


def record(side: str, task_id: str) -> None:
    fd = os.open(os.environ["CUT_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{side} {task_id} {time.time():.3f}\n".encode())
    finally:
        os.close(fd)


def read(path: str) -> list[tuple[str, str, float]]:
    try:
        with open(path) as f:
            rows = [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []
    return [(r[0], r[1], float(r[2])) for r in rows]


def runs(path: str) -> Counter[str]:
    return Counter(task_id for _side, task_id, _at in read(path))
