"""Redis memory per queued task: what ``add.delay(i, i)`` costs while no worker runs.

    python -m benchmarks.entry_size            # 10,000 calls on a redis-server of its own
    python -m benchmarks.entry_size -n 50000 --json
    python -m benchmarks.entry_size --countdown 3600    # parked: execution record + due set
    python -m benchmarks.entry_size --envelope-version 1  # the whole envelope, as before v2

Issue 14 holds a queued task to 400 bytes or less. The script starts its own redis-server
(stopped by its pid), publishes ``N`` calls through the Celery facade with no worker, and
reports ``INFO memory`` ``used_memory`` growth / N, ``MEMORY USAGE`` of the queue's stream / N,
and one stream entry's fields with their sizes, so a change in the envelope or in the engine's
own fields shows where the bytes went.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness.redis_server import RedisServer
from celery_docket import Celery


def _used(r: Any) -> int:
    return int(r.info("memory")["used_memory"])


def measure(
    url: str, n: int, countdown: float | None = None, envelope_version: int = 2
) -> dict[str, Any]:
    """Publish ``n`` calls on ``url`` (parked ``countdown`` seconds when given) and return
    the memory they take."""
    r = redis.Redis.from_url(url)
    app = Celery("entry_size", broker=url, backend=url, set_as_current=False)
    prefix = f"entry-size-{uuid.uuid4().hex[:8]}"
    app.conf.docket_key_prefix = prefix
    app.conf.docket_envelope_version = envelope_version

    @app.task(name="tasks.add")
    def add(x: int, y: int) -> int:
        return x + y

    add.delay(0, 0)  # the queue's set, its stream and the scripts exist before the baseline
    baseline = _used(r)
    stream_before = _stream_usage(r, prefix)
    for i in range(1, n + 1):
        if countdown:
            add.apply_async((i, i), countdown=countdown)
        else:
            add.delay(i, i)
    app.close()  # its result subscriptions are connection state, not queued tasks
    used = _used(r) - baseline
    streams = [k.decode() for k in r.scan_iter(f"*{prefix}:*") if r.type(k) == b"stream"]
    stream_usage = _stream_usage(r, prefix) - stream_before
    if countdown:
        parked = next(k for k in r.scan_iter(f"*{prefix}:*:run:*"))
        mid, fields = parked.decode(), r.hgetall(parked)
    else:
        mid, fields = r.xrevrange(streams[0], count=1)[0]
        mid = mid.decode()
    report = {
        "n": n,
        "parked": bool(countdown),
        "envelope_version": envelope_version,
        "redis": r.info("server")["redis_version"],
        "used_memory_per_task": round(used / n, 1),
        "stream_memory_usage_per_task": round(stream_usage / n, 1),
        "streams": streams,
        "entry_id": mid,
        "entry_fields": {k.decode(): len(v) for k, v in fields.items()},
        "entry_bytes": sum(len(k) + len(v) for k, v in fields.items()),
        "entry": {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()},
    }
    for key in r.scan_iter(f"*{prefix}*"):  # a shared --redis keeps nothing of ours
        r.unlink(key)
    return report


def _stream_usage(r: Any, prefix: str) -> int:
    """``MEMORY USAGE`` of the prefix's streams (all their nodes: ``SAMPLES 0``)."""
    total = 0
    for key in r.scan_iter(f"*{prefix}:*"):
        if r.type(key) == b"stream":
            total += int(r.memory_usage(key, samples=0) or 0)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="calls to publish")
    parser.add_argument("--countdown", type=float, help="park each call this many seconds")
    parser.add_argument("--envelope-version", type=int, default=2, choices=(1, 2))
    parser.add_argument(
        "--redis", help="use this Redis URL instead of starting one (best on an idle server)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    server = None if args.redis else RedisServer().start()
    try:
        url = args.redis or server.url  # type: ignore[union-attr]
        report = measure(url, args.n, args.countdown, args.envelope_version)
    finally:
        if server is not None:
            server.stop()
            server.remove()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    what = f"apply_async((i, i), countdown={args.countdown})" if args.countdown else "delay(i, i)"
    print(
        f"Redis {report['redis']}, {report['n']} x add.{what}, no worker, "
        f"envelope v{args.envelope_version}"
    )
    print(f"  used_memory delta / N    {report['used_memory_per_task']:>8} bytes")
    print(f"  MEMORY USAGE stream / N  {report['stream_memory_usage_per_task']:>8} bytes")
    print(f"  one {'execution record' if args.countdown else 'stream entry'} {report['entry_id']}")
    print(f"  ({report['entry_bytes']} bytes of fields and values):")
    for name, value in report["entry"].items():
        print(f"    {name!r:6} {report['entry_fields'][name]:>5} B  {value[:400]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
