"""The app of ``test_chord_kill.py``: chord parts and bodies that log each run to a ledger.

Configured from the environment: CD_FAULT_BROKER, CD_FAULT_PREFIX, CD_FAULT_LEDGER, and
CD_DIE_SENDING (optional): a task name and a marker path, ``name:path``. The first worker
process about to publish a task of that name (the one that creates the marker) SIGKILLs
itself there, before the message reaches Redis: a worker dying between deciding to send a
chord's body and sending it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from celery_docket import Celery
from celery_docket.signals import before_task_publish

app = Celery("chordkill", broker=os.environ["CD_FAULT_BROKER"])
app.conf.docket_key_prefix = os.environ["CD_FAULT_PREFIX"]
app.conf.docket_lease_seconds = 2
app.conf.docket_max_deliveries = 50
LEDGER = os.environ["CD_FAULT_LEDGER"]


def _log(*fields: object) -> None:
    """One line per run, appended with O_APPEND: lines of concurrent writers never mix."""
    line = " ".join(str(f) for f in fields) + "\n"
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.task(name="ck.part")
def part(i: int, ms: int) -> int:
    _log("PART", i, os.getpid())
    time.sleep(ms / 1000)
    return i


@app.task(name="ck.body")
def body(values: list[int], tag: str = "task") -> int:
    _log("BODY", tag, len(values), sum(values), os.getpid())
    return sum(values)


@app.task(name="ck.member")
def member(values: list[int], k: int) -> int:
    _log("MEMBER", k, len(values), sum(values), os.getpid())
    return sum(values) + k


@app.task(name="ck.plus")
def plus(x: int, k: int) -> int:
    _log("PLUS", k, x, os.getpid())
    return x + k


_die = os.environ.get("CD_DIE_SENDING", "")
if _die:
    _die_name, _, _marker = _die.partition(":")

    @before_task_publish.connect(weak=False)
    def _die_before_sending(sender: Any = None, **kwargs: Any) -> None:
        if sender != _die_name:
            return
        try:
            os.close(os.open(_marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return  # another process already died here once
        _log("DYING", sender, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
