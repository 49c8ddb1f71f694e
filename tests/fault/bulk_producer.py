"""A producer subprocess for ``test_producer_kill.py``: adds chunks of mixed calls forever.

Usage: ``python tests/fault/bulk_producer.py REDIS_URL PREFIX LEDGER``. Each chunk of 2,000 calls
(plain, keyed, and parked 1-2 s ahead) goes through ``enqueue_many`` (pipelined); after it
returns, one ``ENQ`` line per id is appended to the ledger with a single ``os.write``, so
what the ledger lists was acknowledged by Redis. The test SIGKILLs it mid-chunk.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import timedelta

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from celery_docket.engine import Docket
from celery_docket.engine.docket import Call
from celery_docket.engine.native import encode_call
from tests.fault.proc_worker import WORK

CHUNK = int(os.environ.get("CD_BULK_CHUNK", "2000"))


def main(url: str, prefix: str, ledger: str) -> None:
    docket = Docket(url, prefix=prefix)
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"READY {os.getpid()}\n".encode())
    body = encode_call((1,), {}, docket.content_type)
    n = 0
    while True:
        calls = []
        for _ in range(CHUNK):
            n += 1
            kind = n % 3
            if kind == 0:
                calls.append(Call(WORK, body, execution_id=uuid.uuid4().hex))
            elif kind == 1:
                calls.append(Call(WORK, body, key=f"k{os.getpid()}-{n}"))
            else:
                calls.append(Call(WORK, body, when=timedelta(seconds=1 + (n % 7) / 7)))
        done = docket.enqueue_many(calls)
        os.write(fd, "".join(f"ENQ {e.id}\n" for e in done).encode())
        time.sleep(0.001)


if __name__ == "__main__":
    main(*sys.argv[1:4])
