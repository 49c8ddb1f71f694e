"""Envelope version 2 (issue 14): lean on the wire, the same message after decoding.

Every message is compared with what version 1 (the whole envelope) decodes to: headers,
properties and body equal and in the same order, so a reader of ``headers`` and a hand-over
to real Celery (``to_kombu``) cannot tell the two apart.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celery_docket import envelope
from celery_docket.cutover.translate import to_kombu
from celery_docket.exceptions import InvalidTaskError
from celery_docket.protocol import TaskMessage, build_task_message


def _v1(msg: TaskMessage) -> TaskMessage:
    return TaskMessage.decode(msg.encode(version=1))


def _same_message(a: TaskMessage, b: TaskMessage) -> None:
    assert a == b
    assert list(a.headers) == list(b.headers)
    assert list(a.properties) == list(b.properties)
    # byte-compatible hand-over to Celery: the same JSON (delivery tag aside)
    ka, kb = to_kombu(a, "q"), to_kombu(b, "q")
    ka["properties"].pop("delivery_tag")
    kb["properties"].pop("delivery_tag")
    assert json.dumps(ka) == json.dumps(kb)


_ids = st.uuids().map(str)
_maybe_id = st.none() | _ids
_leaf = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=6)
_values = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
_when = st.none() | st.datetimes(timezones=st.just(timezone.utc)) | st.floats(1, 1e6)


@st.composite
def _messages(draw: st.DrawFn) -> TaskMessage:
    task_id = draw(_ids)
    kwargs: dict[str, Any] = {
        "task_id": task_id,
        "eta": draw(st.none() | st.datetimes(timezones=st.just(timezone.utc))),
        "expires": draw(_when),
        "group_id": draw(_maybe_id),
        "group_index": draw(st.none() | st.integers(0, 5)),
        "retries": draw(st.integers(0, 3)),
        "time_limit": draw(st.none() | st.integers(1, 9) | st.floats(0.5, 9)),
        "soft_time_limit": draw(st.none() | st.integers(1, 9)),
        "root_id": draw(st.none() | st.just(task_id) | _ids),
        "parent_id": draw(_maybe_id),
        "shadow": draw(st.none() | st.text(max_size=5)),
        "origin": draw(st.none() | st.text(min_size=1, max_size=8)),
        "ignore_result": draw(st.none() | st.booleans()),
        "argsrepr": draw(st.none() | st.text(max_size=5)),
        "kwargsrepr": draw(st.none() | st.just("{}") | st.text(max_size=5)),
        "replaced_task_nesting": draw(st.integers(0, 2)),
        "stamped_headers": draw(st.none() | st.lists(st.text(max_size=3), max_size=2)),
        "stamps": draw(st.none() | st.dictionaries(st.text(max_size=3), _leaf, max_size=2)),
        "reply_to": draw(st.none() | st.text(max_size=5)),
        "priority": draw(st.none() | st.integers(0, 9)),
        "queue": draw(st.sampled_from(["celery", "q1", ""]) | st.none()),
        "exchange": draw(st.sampled_from(["", "ex"])),
        "compression": draw(st.sampled_from([None, None, "gzip"])),
        "serializer": draw(st.sampled_from(["json", "json", "pickle"])),
        "callbacks": draw(st.none() | st.just([{"task": "cb", "args": []}])),
        "chord": draw(st.none() | st.just({"task": "body"})),
    }
    headers = draw(
        st.none() | st.dictionaries(st.sampled_from(["x-a", "retries", "lang", "id"]), _values)
    )
    if headers and "id" in headers:
        headers["id"] = task_id
    properties = draw(st.none() | st.dictionaries(st.sampled_from(["app_id", "user_id"]), _leaf))
    args = draw(st.lists(_values, max_size=3))
    kw = draw(st.dictionaries(st.text(min_size=1, max_size=4), _values, max_size=2))
    name = draw(st.sampled_from(["tasks.add", "t", "ünï.code"]))
    msg = build_task_message(name, args, kw, headers=headers, properties=properties, **kwargs)
    for key in draw(st.lists(st.sampled_from(["redelivered", "_slot", "app_id"]), unique=True)):
        msg.properties[key] = draw(_leaf)  # set by the worker after the message was built
    return msg


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=_messages())
def test_v2_decodes_to_what_v1_decodes_to(msg: TaskMessage) -> None:
    wire = msg.encode()
    assert json.loads(wire)["v"] == 2  # every message build_task_message makes is packed
    _same_message(TaskMessage.decode(wire), _v1(msg))
    assert len(wire) <= len(msg.encode(version=1))


@settings(max_examples=200, deadline=None)
@given(
    headers=st.dictionaries(st.sampled_from(envelope.HEADER_NAMES + ("x",)), _values),
    properties=st.dictionaries(st.sampled_from(envelope.PROPERTY_NAMES + ("y",)), _values),
)
def test_any_other_shape_still_round_trips(
    headers: dict[str, Any], properties: dict[str, Any]
) -> None:
    """Reordered, missing or odd headers and properties: version 1, never rebuilt wrong."""
    headers.update(id="i", task="t")
    msg = TaskMessage(headers, b"[[], {}, null]", properties=properties)
    _same_message(TaskMessage.decode(msg.encode()), _v1(msg))


def test_add_delay_entry_is_small() -> None:
    msg = build_task_message("tasks.add", [10000, 10000], queue="celery")
    wire = msg.encode()
    assert json.loads(wire)["v"] == 2
    assert len(wire) <= 200, wire
    assert len(msg.encode(version=1)) > 600


def test_v1_entries_still_decode() -> None:
    """What producers before version 2 wrote, verbatim."""
    old = (
        b'{"v":1,"headers":{"lang":"py","task":"tasks.add","id":"5ecf5cdb-8540-40f1-a2dc-'
        b'ddd2d6cc13f1","shadow":null,"eta":null,"expires":null,"group":null,"group_index":'
        b'null,"retries":0,"timelimit":[null,null],"root_id":"5ecf5cdb-8540-40f1-a2dc-ddd2d6'
        b'cc13f1","parent_id":null,"argsrepr":"[1, 2]","kwargsrepr":"{}","origin":"gen1@vm",'
        b'"ignore_result":false,"replaced_task_nesting":0,"stamped_headers":null,"stamps":{}},'
        b'"properties":{"correlation_id":"5ecf5cdb-8540-40f1-a2dc-ddd2d6cc13f1","reply_to":"",'
        b'"priority":null,"delivery_info":{"exchange":"","routing_key":"celery"}},"content-type'
        b'":"application/json","content-encoding":"utf-8","body-encoding":"utf-8","body":"[[1,'
        b' 2], {}, {\\"callbacks\\": null, \\"errbacks\\": null, \\"chain\\": null, \\"chord\\"'
        b': null}]"}'
    )
    msg = TaskMessage.decode(old)
    assert msg.headers["argsrepr"] == "[1, 2]" and msg.properties["priority"] is None
    assert msg.body.endswith(b'"chord": null}]')
    again = TaskMessage.decode(msg.encode())
    _same_message(again, msg)
    assert msg.encode(version=1) == old


def test_mutating_a_decoded_default_does_not_leak() -> None:
    wire = build_task_message("t", [1]).encode()
    first = TaskMessage.decode(wire)
    first.headers["timelimit"][0] = 5
    first.headers["stamps"]["k"] = 1
    second = TaskMessage.decode(wire)
    assert second.headers["timelimit"] == [None, None] and second.headers["stamps"] == {}


def test_false_is_not_zero() -> None:
    """A default is left out only if equal *and* of its type (JSON tells 0 from false)."""
    msg = build_task_message("t", [1], retries=False, ignore_result=0)  # type: ignore[arg-type]
    _same_message(TaskMessage.decode(msg.encode()), _v1(msg))
    assert TaskMessage.decode(msg.encode()).headers["retries"] is False


@pytest.mark.parametrize(
    "env",
    [
        {"v": 2, "t": "t", "a": "()", "o": "o"},  # no id
        {"v": 2, "i": "i", "a": "()", "o": "o", "b": "[]"},  # no task
        {"v": 2, "i": "i", "t": "t", "a": "()", "o": "o", "b": "[]", "zz": 1},
        {"v": 2, "i": "i", "t": "t", "a": "()", "o": "o", "B": 5},
        {"v": 2, "i": "i", "t": "t", "a": "()", "o": "o", "B": "[", "b": "["},
        {"v": 2, "i": "i", "t": "t", "a": "()", "o": "o", "b": "[]", "X": {"lang": "py"}},
        {"v": 2, "i": "i", "t": "t", "a": "()", "o": "o", "b": "[]", "P": []},
        {"v": 2, "i": 5, "t": "t", "a": "()", "o": "o", "b": "[]"},
        {"v": 3, "i": "i", "t": "t", "a": "()", "o": "o", "b": "[]"},
    ],
)
def test_malformed_v2_is_an_invalid_task(env: dict[str, Any]) -> None:
    with pytest.raises(InvalidTaskError):
        TaskMessage.decode(json.dumps(env))


def test_eta_and_expires_survive() -> None:
    eta = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    msg = build_task_message("t", [1], eta=eta, expires=60, priority=3, queue="other")
    decoded = TaskMessage.decode(msg.encode())
    _same_message(decoded, _v1(msg))
    assert decoded.headers["eta"] == eta.isoformat()
    assert decoded.properties["delivery_info"] == {"exchange": "", "routing_key": "other"}


@pytest.mark.parametrize("version", [1, 2])
def test_a_worker_runs_both_versions(broker_url: str, prefix: str, version: int) -> None:
    """A rolling deploy: ``docket_envelope_version = 1`` writes what older workers read, and
    this worker runs what either kind of producer queued."""
    from celery_docket import Celery
    from celery_docket.worker import WorkController

    app = Celery(f"e{uuid.uuid4().hex[:6]}", broker=broker_url, set_as_current=False)
    app.conf.docket_key_prefix = prefix
    app.conf.docket_envelope_version = version

    @app.task(name="env.add")
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(2, 3)
    k = app.docket.keys("celery")
    ((_mid, fields),) = app.docket.redis.xrange(k.stream)
    assert json.loads(fields[b"b"])["v"] == version
    w = WorkController(app, pool="threads", concurrency=1, setup_logging=False)
    w.start_in_thread()
    try:
        assert result.get(timeout=10) == 5
    finally:
        w.stop()
        app.close()


def test_a_header_named_like_kombus_type_tag_stays_version_1() -> None:
    msg = build_task_message("t", [1], headers={"__type__": "x"})
    assert json.loads(msg.encode())["v"] == 1
    msg = build_task_message("t", [1], properties={"__type__": "x"})
    assert json.loads(msg.encode())["v"] == 1
