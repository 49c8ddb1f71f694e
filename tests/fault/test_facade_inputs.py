"""Bad input and misbehaving tasks through the Celery API, on a real redis-server: each
ends in a stored FAILURE (so ``get()`` raises instead of waiting) and the worker goes on."""

from __future__ import annotations

import resource
import uuid
import zlib
from collections.abc import Iterator

import pytest

from celery_docket import Celery, states
from celery_docket.exceptions import PayloadTooLarge, WorkerLostError
from celery_docket.worker import WorkController

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(60)]


@pytest.fixture
def app(redis_server_url: str, prefix: str) -> Iterator[Celery]:
    a = Celery(f"fi{uuid.uuid4().hex[:6]}", broker=redis_server_url, set_as_current=False)
    a.conf.docket_key_prefix = prefix
    a.conf.docket_lease_seconds = 2
    a.conf.docket_max_payload_bytes = 1 << 20

    @a.task(name="fi.add")
    def add(x: int, y: int) -> int:
        return x + y

    @a.task(name="fi.exit")
    def exits() -> None:
        raise SystemExit(3)

    yield a
    a.close()


@pytest.fixture
def worker(app: Celery) -> Iterator[WorkController]:
    w = WorkController(app, pool="threads", concurrency=1, setup_logging=False).start_in_thread()
    try:
        yield w
    finally:
        w.stop()


def dead_reasons(app: Celery) -> list[str]:
    dead = app.docket.redis.xrange(app.docket.keys("celery").dead)
    return [f[b"r"].decode() for _m, f in dead]


def test_task_raising_system_exit_is_a_failure(app: Celery, worker: WorkController) -> None:
    """Like Celery: a task that raises SystemExit is FAILURE (WorkerLostError), and the
    one-slot worker runs the next task."""
    r = app.tasks["fi.exit"].delay()
    with pytest.raises(WorkerLostError, match="SystemExit"):
        r.get(timeout=10)
    assert r.state == states.FAILURE
    assert app.tasks["fi.add"].delay(2, 3).get(timeout=10) == 5


def _zlib_bomb(task_id: str, decoded_mb: int) -> bytes:
    """A task message whose zlib body inflates to ``decoded_mb`` MiB of JSON, compressed in
    chunks so this process never holds the inflated payload."""
    from celery_docket.protocol import TaskMessage, build_task_message

    template = build_task_message("fi.add", [0, 0], {}, task_id=task_id)
    z = zlib.compressobj()
    parts = [z.compress(b'[["')]
    chunk = b"a" * (1 << 20)
    parts += [z.compress(chunk) for _ in range(decoded_mb)]
    parts.append(z.compress(b'", ""], {}, {}]') + z.flush())
    headers = {**template.headers, "compression": "application/x-gzip"}
    return TaskMessage(headers, b"".join(parts), template.content_type, "utf-8").encode()


def _raw_entry(app: Celery, task_id: str, body: bytes) -> None:
    stream = app.docket.keys("celery").stream
    app.docket.redis.xadd(stream, {"i": task_id, "n": "fi.add", "b": body, "a": "1"})


def test_compressed_argument_over_the_limit_is_refused_at_publish(app: Celery) -> None:
    """The payload limit applies to the decoded message, not to its compressed bytes."""
    with pytest.raises(PayloadTooLarge):
        app.tasks["fi.add"].apply_async(("a" * (3 << 20), ""), compression="zlib")
    assert app.docket.redis.xlen(app.docket.keys("celery").stream) == 0


def test_decompression_bomb_and_oversized_entry_fail_without_inflating(
    app: Celery, worker: WorkController
) -> None:
    """A 64 MiB zlib bomb and a 2 MiB entry written straight to the stream (limit 1 MiB):
    each is dead-lettered with FAILURE (PayloadTooLarge) stored, the worker's memory does
    not grow by the bomb's size, and the next task runs."""
    from celery_docket.protocol import build_task_message

    bomb_id, big_id = str(uuid.uuid4()), str(uuid.uuid4())
    bomb = _zlib_bomb(bomb_id, 64)
    assert len(bomb) < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _raw_entry(app, bomb_id, bomb)
    with pytest.raises(PayloadTooLarge):
        app.AsyncResult(bomb_id).get(timeout=10)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 32, f"the worker inflated the bomb: max RSS grew {grown_mb:.0f} MiB"
    _raw_entry(app, big_id, build_task_message("fi.add", ["x" * (2 << 20), ""], {}).encode())
    with pytest.raises(PayloadTooLarge):
        app.AsyncResult(big_id).get(timeout=10)
    assert app.tasks["fi.add"].delay(1, 2).get(timeout=10) == 3
    reasons = dead_reasons(app)
    assert len(reasons) == 2 and all("too large" in r for r in reasons), reasons


@pytest.mark.parametrize(
    "label, headers",
    [
        ("expires not a date", {"expires": "not-a-date"}),
        ("timelimit not numbers", {"timelimit": ["x", "y"]}),
        ("id not a string", {"id": 12345}),
    ],
)
def test_malformed_header_stores_a_failure(
    app: Celery, worker: WorkController, label: str, headers: dict
) -> None:
    """A message whose headers are malformed, written straight to the stream, is
    dead-lettered with FAILURE stored under the id the entry carries, so ``get()`` raises
    at once; the worker goes on."""
    from celery_docket.exceptions import InvalidTaskError
    from celery_docket.protocol import TaskMessage, build_task_message

    task_id = str(uuid.uuid4())
    m = build_task_message("fi.add", [1, 2], {}, task_id=task_id)
    raw = TaskMessage({**m.headers, **headers}, m.body, m.content_type, "utf-8").encode()
    _raw_entry(app, task_id, raw)
    r = app.AsyncResult(task_id)
    with pytest.raises(InvalidTaskError):
        r.get(timeout=5)
    assert r.state == states.FAILURE
    assert app.tasks["fi.add"].delay(1, 2).get(timeout=10) == 3
    assert len(dead_reasons(app)) == 1, label


@pytest.mark.parametrize("case", ["unknown task", "arguments do not bind", "max deliveries"])
def test_dead_lettered_chord_header_fails_the_chord(app: Celery, case: str) -> None:
    """A chord header task that is dead-lettered instead of run (unregistered, arguments
    that do not bind, delivered too many times) fails the chord with ChordError, as a
    failing header does, instead of leaving the body PENDING forever."""
    from celery_docket import chord
    from celery_docket.exceptions import ChordError

    @app.task(name="fi.total")
    def total(values: list[int]) -> int:
        return sum(values)

    add = app.tasks["fi.add"]
    bad = {
        "unknown task": app.signature("fi.nope", args=(1,)),
        "arguments do not bind": add.s(1),
        "max deliveries": add.s(5, 5),
    }[case]
    add.typing = False  # a producer that does not check arguments (another app version)
    result = chord([add.s(1, 1), bad])(total.s())
    add.typing = True
    if case == "max deliveries":
        # a runner died on it again and again: delivered more than max_deliveries (5)
        stream = app.docket.keys("celery").stream
        app.docket.ensure_group("celery")
        entries = app.docket.redis.xreadgroup("workers", "ghost:1-000000", {stream: ">"})
        last = entries[0][1][-1][0]
        app.docket.redis.xclaim(stream, "workers", "ghost:1-000000", 0, [last], retrycount=9)
    w = WorkController(app, pool="threads", concurrency=2, setup_logging=False).start_in_thread()
    try:
        body = app.AsyncResult(result.id)  # the body itself, not following its parents
        with pytest.raises(ChordError):
            body.get(timeout=15)
        assert body.state == states.FAILURE
    finally:
        w.stop()
