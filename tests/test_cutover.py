"""The cutover's moves on a real Redis, message by message (issue 16).

Messages are published by a real Celery producer (kombu's Redis transport) under a
``global_keyprefix`` of the test's own, so Celery's ``celery``/``unacked`` keys of one test are
never another's. Reserved messages are written the way kombu's QoS writes them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py

from celery_docket import Celery
from celery_docket.cutover import Mover
from celery_docket.cutover.intake import Intake, backlog_hint
from celery_docket.cutover.translate import from_kombu, parse, to_kombu
from celery_docket.protocol import TaskMessage, decode_body

pytestmark = pytest.mark.redis


@pytest.fixture
def apps(redis_server_url: str, prefix: str) -> Iterator[tuple[Any, Any, Any]]:
    import celery

    options = {"global_keyprefix": f"{prefix}:", "visibility_timeout": 60}
    capp = celery.Celery("c", broker=redis_server_url)
    capp.conf.broker_transport_options = options
    ours = Celery("o", broker=redis_server_url)
    ours.conf.docket_key_prefix = prefix
    ours.conf.broker_transport_options = options
    ours.conf.docket_lease_seconds = 30
    r = redis_py.Redis.from_url(redis_server_url)
    try:
        yield capp, ours, r
    finally:
        for key in r.scan_iter(match=f"*{prefix}*", count=1000):
            r.delete(key)
        capp.close()


def _stream(ours: Any, queue: str = "celery") -> list[TaskMessage]:
    k = ours.docket.keys(queue)
    return [TaskMessage.decode(f[b"b"]) for _id, f in ours.docket.redis.xrange(k.stream)]


def _reserve(capp: Any, r: Any, prefix: str, at: float, **options: Any) -> str:
    """Send one message, then reserve it as a Celery worker would (list -> unacked)."""
    res = capp.send_task("t.work", (1,), **options)
    raw = r.rpop(f"{prefix}:celery")
    message = json.loads(raw)
    tag = message["properties"]["delivery_tag"]
    r.hset(f"{prefix}:unacked", tag, json.dumps([message, "celery", "celery"]))
    r.zadd(f"{prefix}:unacked_index", {tag: at})
    return str(res.id)


def test_ready_messages_move_once_with_eta_priority_and_protocol_1(apps: Any, prefix: str) -> None:
    capp, ours, r = apps
    plain = capp.send_task("t.work", (1,), link=capp.signature("t.after")).id
    later = capp.send_task("t.work", (2,), countdown=600).id
    urgent = capp.send_task("t.work", (3,), priority=9).id
    capp.conf.task_protocol = 1
    old = capp.send_task("t.work", (4,), expires=300).id
    mover = Mover(ours)
    assert mover.ready_counts(["celery"]) == {"celery": 4}
    census = mover.census(["celery"])
    assert census.ready["celery"] == 4 and census.eta["celery"] == 1
    assert census.by_task == {"t.work": 4}

    tally = mover.drain(["celery"])
    assert tally.total == 4 and tally.parked == 1 and tally.by_task == {"t.work": 4}
    assert mover.ready_counts(["celery"]) == {"celery": 0}
    ready = {m.id: m for m in _stream(ours)}
    assert set(ready) == {plain, urgent, old}
    assert ready[urgent].properties["priority"] == 9
    args, _kwargs, embed = decode_body(ready[plain])
    assert args == [1] and embed["callbacks"][0]["task"] == "t.after"
    assert ready[old].headers["task"] == "t.work" and ready[old].headers["expires"]
    assert decode_body(ready[old])[0] == [4]
    k = ours.docket.keys("celery")
    assert r.zscore(k.due, later) is not None  # parked until its countdown, not run early
    assert mover.drain(["celery"]).total == 0  # twice: nothing twice


def test_a_message_taken_by_someone_else_first_is_not_added(apps: Any, prefix: str) -> None:
    capp, ours, r = apps
    capp.send_task("t.work", (1,))
    mover = Mover(ours)
    raw = r.lrange(f"{prefix}:celery", -1, -1)[0]
    r.lrem(f"{prefix}:celery", 1, raw)  # a Celery worker's BRPOP won the race
    tally = mover._move([("list", f"{prefix}:celery", f"{prefix}:celery", raw, "celery")], 0.0)
    assert tally.gone == 1 and tally.total == 0 and _stream(ours) == []


def test_the_same_task_id_twice_runs_once(apps: Any, prefix: str) -> None:
    capp, ours, _r = apps
    task_id = str(uuid.uuid4())
    capp.send_task("t.work", (1,), task_id=task_id)
    capp.send_task("t.work", (1,), task_id=task_id)
    capp.send_task("t.work", (1,), task_id=task_id, retries=1)  # a retry is a new run
    tally = Mover(ours).drain(["celery"])
    assert (tally.total, tally.duplicates) == (2, 1)
    assert sorted(m.headers["retries"] for m in _stream(ours)) == [0, 1]


def test_content_the_app_does_not_accept_stays_in_celerys_list(apps: Any, prefix: str) -> None:
    capp, ours, _r = apps
    capp.send_task("t.work", (1,), serializer="pickle")
    capp.send_task("t.work", (2,))
    mover = Mover(ours)
    tally = mover.drain(["celery"])
    assert (tally.total, tally.refused) == (1, 1)
    assert mover.ready_counts(["celery"]) == {"celery": 1}
    ours.conf.accept_content = ["json", "pickle"]
    tally = Mover(ours).drain(["celery"])
    assert tally.total == 1
    assert sorted(decode_body(m, accept=["json", "pickle"])[0][0] for m in _stream(ours)) == [
        1,
        2,
    ]


def test_reserved_messages_are_taken_only_once_orphaned(apps: Any, prefix: str) -> None:
    capp, ours, r = apps
    young = _reserve(capp, r, prefix, time.time() - 5, countdown=300)
    old = _reserve(capp, r, prefix, time.time() - 120, countdown=300)
    mover = Mover(ours)  # visibility_timeout 60 s
    census = mover.census(["celery"])
    assert (census.orphaned["celery"], census.reserved["celery"]) == (1, 1)
    tally = mover.drain(["celery"])
    assert (tally.total, tally.parked) == (1, 1)
    k = ours.docket.keys("celery")
    assert r.zscore(k.due, old) is not None and r.zscore(k.due, young) is None
    assert r.hlen(f"{prefix}:unacked") == 1 and r.zcard(f"{prefix}:unacked_index") == 1
    assert Mover(ours, unacked_age=0).drain(["celery"]).total == 1
    assert r.hlen(f"{prefix}:unacked") == 0


def test_backlog_hint_names_count_and_command(apps: Any, prefix: str) -> None:
    capp, ours, _r = apps
    assert backlog_hint(ours, ["celery"]) is None
    for i in range(3):
        capp.send_task("t.work", (i,), priority=3 * i)
    hint = backlog_hint(ours, ["celery"])
    assert hint is not None
    assert "3 message(s)" in hint and "'celery': 3" in hint and "migrate" in hint


def test_intake_thread_moves_what_arrives(apps: Any, prefix: str) -> None:
    capp, ours, _r = apps
    intake = Intake(ours, ["celery"]).start()
    try:
        ids = {capp.send_task("t.work", (i,)).id for i in range(25)}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_stream(ours)) < 25:
            time.sleep(0.05)
    finally:
        intake.stop()
    assert {m.id for m in _stream(ours)} == ids and intake.moved == 25


def test_to_kombu_is_what_from_kombu_reads() -> None:
    from celery_docket.protocol import build_task_message

    msg = build_task_message("t.work", [1], {"a": 2}, countdown=5, priority=6, queue="q")
    payload = parse(json.dumps(to_kombu(msg, "q")))
    assert payload["properties"]["body_encoding"] == "base64"
    back = from_kombu(payload, ["json"], "q")
    assert back.message.headers == msg.headers and back.message.body == msg.body
    assert back.priority == 6 and back.eta is not None and back.protocol == 2


def test_worker_and_info_warn_about_celerys_backlog(
    apps: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    from click.testing import CliRunner

    from celery_docket.cli.main import celery as celery_group
    from celery_docket.worker import WorkController

    capp, ours, _r = apps
    for i in range(4):
        capp.send_task("t.work", (i,))
    with caplog.at_level("WARNING", logger="celery_docket.cutover"):
        controller = WorkController(
            ours, pool="threads", concurrency=1, queues=["celery"], setup_logging=False
        ).start_in_thread()
        controller.stop()
    hint = [r.getMessage() for r in caplog.records if "Celery's Redis lists" in r.getMessage()]
    assert hint and "4 message(s)" in hint[0] and "migrate" in hint[0]
    assert controller.celery_intake is None  # warned, not taken: the intake is off

    import tests.test_cutover as this

    this.cli_app = ours
    result = CliRunner().invoke(
        celery_group, ["-A", "tests.test_cutover:cli_app", "info"], prog_name="celery-docket"
    )
    assert result.exit_code == 0, result.output
    assert "4 message(s) wait in Celery's Redis lists" in result.output
    assert "celery-docket -A <app> migrate" in result.output


def test_worker_with_the_intake_runs_celerys_messages(apps: Any, prefix: str) -> None:
    from celery_docket.worker import WorkController

    capp, ours, r = apps
    ran: list[int] = []

    @ours.task(name="t.work")
    def work(n: int) -> int:
        ran.append(n)
        return n

    ours.conf.docket_celery_intake = True
    controller = WorkController(
        ours, pool="threads", concurrency=2, queues=["celery"], setup_logging=False
    ).start_in_thread()
    try:
        ids = [capp.send_task("t.work", (i,)).id for i in range(10)]
        assert [ours.AsyncResult(t).get(timeout=10) for t in ids] == list(range(10))
    finally:
        controller.stop()
    assert sorted(ran) == list(range(10))
    assert controller.celery_intake is not None and controller.celery_intake._thread is None


def test_migrate_command_counts_moves_and_moves_nothing_twice(apps: Any, prefix: str) -> None:
    from click.testing import CliRunner

    from celery_docket.cli.main import celery as celery_group

    capp, ours, r = apps

    @ours.task(name="t.work")
    def work(n: int) -> int:
        return n

    for i in range(5):
        capp.send_task("t.work", (i,), countdown=300 if i == 0 else None)
    capp.send_task("t.other", ())
    _reserve(capp, r, prefix, time.time() - 600)

    import tests.test_cutover as this

    this.cli_app = ours

    def run(*args: str) -> str:
        result = CliRunner().invoke(
            celery_group, ["-A", "tests.test_cutover:cli_app", "migrate", *args]
        )
        assert result.exit_code == 0, result.output
        return result.output

    out = run("--dry-run")
    assert "celery: 6 ready (1 with an ETA), 1 reserved by a Celery worker that is gone" in out
    assert "6  t.work" in out and "1  t.other  (not registered in this app)" in out
    assert "Dry run: 7 message(s) would move" in out
    out = run()
    assert "Moved 7 message(s)" in out and "1 parked until their ETA" in out
    assert "Nothing to move" in run()
    assert "Dry run: 0 message(s) would move" in run("--dry-run")
    assert r.xlen(ours.docket.keys("celery").stream) == 6


def test_the_intakes_index_pass_pages_past_what_it_does_not_serve(apps: Any, prefix: str) -> None:
    capp, ours, r = apps
    old = time.time() - 120
    ids = [_reserve(capp, r, prefix, old - i) for i in range(7)]
    other = capp.send_task("t.work", (1,), queue="elsewhere")
    raw = r.rpop(f"{prefix}:elsewhere")
    tag = json.loads(raw)["properties"]["delivery_tag"]
    r.hset(f"{prefix}:unacked", tag, json.dumps([json.loads(raw), "", "elsewhere"]))
    r.zadd(f"{prefix}:unacked_index", {tag: old - 100})  # the oldest: first in every page
    young = _reserve(capp, r, prefix, time.time())
    tally = Mover(ours, batch=3).drain_unacked(["celery"], full=False)
    assert tally.total == 7
    assert {m.id for m in _stream(ours)} == set(ids)
    left = {json.loads(v)[0]["headers"]["id"] for v in r.hvals(f"{prefix}:unacked")}
    assert left == {other.id, young}
