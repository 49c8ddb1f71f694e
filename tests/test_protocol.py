"""Wire formats: task messages and result meta, interoperable with real Celery."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu.exceptions import ContentDisallowed
from kombu.serialization import dumps

from celery_docket import protocol
from celery_docket.exceptions import InvalidTaskError, SecurityError
from celery_docket.protocol import (
    TaskMessage,
    build_task_message,
    decode_body,
    decode_result_meta,
    encode_result_meta,
    exception_to_meta,
    meta_to_exception,
)

pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex")

NOW = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


class Outer:
    class InnerError(Exception):
        """Nested class: stored under its qualified name."""


class TwoArgError(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.callback = lambda: None  # lambdas cannot be pickled

    def __reduce__(self) -> Any:
        raise TypeError("no pickling")


# -- task messages: same headers and body as Celery -----------------------------------------

CALLS: list[dict[str, Any]] = [
    {},
    {"countdown": 10, "expires": 60},
    {"eta": NOW + timedelta(hours=1), "expires": NOW + timedelta(days=1)},
    {"group_id": "g", "group_index": 2, "retries": 3, "time_limit": 30, "soft_time_limit": 20},
    {"root_id": "r", "parent_id": "p", "shadow": "alias", "ignore_result": True},
    {"argsrepr": "<hidden>", "kwargsrepr": "<hidden>", "reply_to": "reply-q"},
]


@pytest.fixture(scope="module")
def celery_app() -> Any:
    celery = pytest.importorskip("celery")
    app = celery.Celery("oracle", set_as_current=False)

    @app.task(name="tasks.add")
    def add(x: int, y: int, z: int = 0) -> int:
        return x + y + z

    return app


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shape(v) for v in value]
    return type(value).__name__


def _celery_message(app: Any, task_id: str, options: dict[str, Any]) -> Any:
    return app.amqp.as_task_v2(
        task_id,
        "tasks.add",
        args=(1, 2),
        kwargs={"z": 3},
        now=NOW,
        origin="gen1@host",
        group_id=options.get("group_id"),
        **{k: v for k, v in options.items() if k != "group_id"},
    )


@pytest.mark.parametrize("options", CALLS)
def test_headers_and_body_match_celery(celery_app: Any, options: dict[str, Any]) -> None:
    theirs = _celery_message(celery_app, "tid-1", options)
    mine = build_task_message(
        "tasks.add", (1, 2), {"z": 3}, task_id="tid-1", now=NOW, origin="gen1@host", **options
    )
    assert mine.headers == theirs.headers
    content_type, encoding, body = dumps(theirs.body, "json")
    assert (mine.content_type, mine.content_encoding, mine.body) == (
        content_type,
        encoding,
        body.encode(),
    )
    assert mine.properties["correlation_id"] == theirs.properties["correlation_id"]
    assert mine.properties["reply_to"] == theirs.properties["reply_to"]


@pytest.mark.parametrize("options", CALLS)
def test_header_shapes_match_celery_with_defaults(celery_app: Any, options: dict[str, Any]) -> None:
    """Without pinning ids/hostnames/clocks, keys and value types still agree."""
    theirs = celery_app.amqp.as_task_v2(str(uuid.uuid4()), "tasks.add", (1,), {}, **options)
    mine = build_task_message("tasks.add", (1,), {}, **options)
    assert list(mine.headers) == list(theirs.headers)
    assert _shape(mine.headers) == _shape(theirs.headers)
    assert mine.headers["origin"].startswith("gen") and "@" in mine.headers["origin"]
    assert mine.headers["root_id"] == options.get("root_id", mine.headers["id"])
    uuid.UUID(mine.headers["id"])


def test_celery_worker_parses_our_message(celery_app: Any) -> None:
    from celery.worker.request import Request
    from kombu import Message

    msg = build_task_message(
        "tasks.add",
        [1, 2],
        {"z": 3},
        countdown=5,
        expires=NOW + timedelta(days=1),
        time_limit=9,
        soft_time_limit=4,
        queue="celery",
        now=NOW,
    )
    wire = TaskMessage.decode(msg.encode())
    kombu_message = Message(
        body=wire.body,
        content_type=wire.content_type,
        content_encoding=wire.content_encoding,
        headers=wire.headers,
        properties=wire.properties,
        delivery_info=wire.properties["delivery_info"],
    )
    request = Request(kombu_message, app=celery_app, task=celery_app.tasks["tasks.add"])
    assert (request.id, request.name) == (msg.id, "tasks.add")
    assert request.eta == NOW + timedelta(seconds=5)
    assert request.expires == NOW + timedelta(days=1)
    assert request.time_limits == [9, 4]
    assert (request.args, request.kwargs) == ([1, 2], {"z": 3})
    assert request.execute_using_pool  # a fully formed Request


def test_we_parse_celery_message(celery_app: Any) -> None:
    theirs = _celery_message(celery_app, "tid-2", {"countdown": 3, "group_id": "g"})
    content_type, encoding, body = dumps(theirs.body, "json")
    msg = TaskMessage(theirs.headers, body.encode(), content_type, encoding, theirs.properties)
    args, kwargs, embed = decode_body(TaskMessage.decode(msg.encode()), ["json"])
    assert (args, kwargs) == ([1, 2], {"z": 3})
    assert embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def test_user_headers_override_and_argument_checks() -> None:
    msg = build_task_message("t", headers={"x-trace": "abc", "retries": 7})
    assert msg.headers["x-trace"] == "abc" and msg.headers["retries"] == 7
    with pytest.raises(TypeError, match="list or tuple"):
        build_task_message("t", args="abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping"):
        build_task_message("t", kwargs=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="countdown is out of range"):
        build_task_message("t", countdown=-(2**40))


# -- serializers and accept -------------------------------------------------------------------

SIDE_EFFECTS: list[str] = []


def _record(event: str) -> str:
    SIDE_EFFECTS.append(event)
    return event


class Boom:
    """Unpickling this records a side effect: proves a refused payload is never loaded."""

    def __reduce__(self) -> Any:
        return (_record, ("unpickled",))


def test_pickle_roundtrip_when_accepted() -> None:
    msg = build_task_message("t", (Outer, {1, 2}), {"when": NOW}, serializer="pickle")
    assert msg.content_type == "application/x-python-serialize"
    wire = TaskMessage.decode(msg.encode())
    assert json.loads(msg.encode())["be"] == "base64"  # envelope version 2's short key
    assert json.loads(msg.encode(version=1))["body-encoding"] == "base64"
    args, kwargs, _ = decode_body(wire, ["json", "pickle"])
    assert args == [Outer, {1, 2}] and kwargs == {"when": NOW}


@pytest.mark.parametrize("accept", [None, ["json"], ["application/json", "yaml"]])
def test_pickle_refused_and_never_loaded(accept: list[str] | None) -> None:
    SIDE_EFFECTS.clear()
    msg = TaskMessage.decode(build_task_message("t", (Boom(),), serializer="pickle").encode())
    compressed = build_task_message("t", (Boom(),), serializer="pickle", compression="gzip")
    for message in (msg, compressed):
        with pytest.raises(ContentDisallowed):
            decode_body(message, accept)
    assert SIDE_EFFECTS == []
    decode_body(msg, ["pickle"])  # control: the payload does have a side effect when loaded
    assert SIDE_EFFECTS == ["unpickled"]


@pytest.mark.parametrize("name", ["yaml", "msgpack"])
def test_optional_serializers(name: str) -> None:
    pytest.importorskip(name)
    msg = build_task_message("t", [1, "a"], {"k": [True, None]}, serializer=name)
    assert decode_body(TaskMessage.decode(msg.encode()), [name])[:2] == (
        [1, "a"],
        {"k": [True, None]},
    )


def test_compression_roundtrip() -> None:
    msg = build_task_message("t", ["x" * 5000], compression="gzip")
    assert msg.headers["compression"] == "application/x-gzip"
    assert len(msg.body) < 500
    assert decode_body(TaskMessage.decode(msg.encode()))[0] == ["x" * 5000]


def test_json_values_like_celery() -> None:
    """Typed JSON values round-trip as kombu (hence Celery) encodes them; tuples become lists."""
    values = [
        datetime(2020, 1, 2, 3, 4, 5, 6),
        NOW,
        date(2020, 1, 2),
        time(1, 2, 3, 4),
        uuid.UUID(int=7),
        Decimal("1.10"),
        (1, (2, 3)),
        2**100,
        "é\u2603",
    ]
    msg = TaskMessage.decode(build_task_message("t", values, {"d": Decimal("-0")}).encode())
    args, kwargs, _ = decode_body(msg)
    assert args[:-3] == values[:6]
    assert args[6] == [1, [2, 3]] and args[7] == 2**100 and args[8] == "é\u2603"
    assert str(kwargs["d"]) == "-0"
    assert b'{"__type__": "decimal", "__value__": "1.10"}' in msg.body


# -- envelope robustness ----------------------------------------------------------------------


def _envelope(**changes: Any) -> bytes:
    env = json.loads(build_task_message("t", task_id="i").encode())
    env.update(changes)
    return json.dumps({k: v for k, v in env.items() if v is not None}).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'{"v": 2}',
        b'{"__type__": "nope", "__value__": 1}',
        _envelope(v=99),
        _envelope(headers={"task": "t"}),
        _envelope(headers={"id": "i", "task": 5}),
        _envelope(headers=[1]),
        _envelope(body=5),
        _envelope(**{"body-encoding": "rot13"}),
        _envelope(**{"body-encoding": "base64", "body": "!!notbase64!!"}),
        b"[" * 100000,
    ],
)
def test_garbage_raises_invalid_task_error(data: bytes) -> None:
    with pytest.raises(InvalidTaskError):
        TaskMessage.decode(data)


def test_decode_accepts_str_and_buffers() -> None:
    msg = build_task_message("t", [1])
    raw = msg.encode()
    assert TaskMessage.decode(raw.decode()) == msg
    assert TaskMessage.decode(memoryview(raw)) == msg
    assert TaskMessage.decode(bytearray(raw)) == msg


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'{"a": 1}', b'["notalist", {}, {}]', b"[[], [], {}]", b"[[], {}, 5]", b"{bad"],
)
def test_bad_bodies_raise_invalid_task_error(body: bytes) -> None:
    msg = TaskMessage({"id": "i", "task": "t"}, body)
    with pytest.raises(InvalidTaskError):
        decode_body(msg)


def test_missing_embed_is_filled() -> None:
    args, kwargs, embed = decode_body(TaskMessage({"id": "i", "task": "t"}, b"[[1], {}, null]"))
    assert embed == dict.fromkeys(("callbacks", "errbacks", "chain", "chord"))


def test_saferepr_bounds(celery_app: Any) -> None:
    from celery.utils.saferepr import saferepr as celery_saferepr

    for value in [(1, "a", [1, [2, [3, [4]]]], {"k": b"x"}), (), {}, ("x",), {"a": {1, 2}}]:
        assert protocol.saferepr(value) == celery_saferepr(value, 1024, maxlevels=3)
    long = protocol.saferepr(("x" * 5000,))
    assert len(long) == 1027 and long.endswith("...")
    assert protocol.saferepr(list(range(10**6)), maxsize=50).endswith("...")


# -- result meta: byte-identical to Celery's Redis backend ----------------------------------


@pytest.fixture
def redis_backend() -> Any:
    celery = pytest.importorskip("celery")
    fakeredis = pytest.importorskip("fakeredis")

    def make(**conf: Any) -> Any:
        app = celery.Celery("oracle", set_as_current=False, backend="redis://localhost:1/0")
        app.conf.update(conf)
        backend = app.backend
        backend.client = fakeredis.FakeStrictRedis()
        return app, backend

    return make


def _request(**extra: Any) -> Any:
    from celery.app.task import Context

    fields = {
        "id": "tid",
        "task": "tasks.add",
        "args": [1, 2],
        "kwargs": {"z": 3},
        "hostname": "w1@host",
        "retries": 2,
        "delivery_info": {"routing_key": "q1"},
        "children": [],
    }
    return Context(**(fields | extra))


STORED: list[tuple[str, Any, str | None]] = [
    ("SUCCESS", {"x": [1, 2.5, None, "é"]}, None),
    ("SUCCESS", NOW, None),
    ("FAILURE", KeyError("k", 3), "Traceback..."),
    ("FAILURE", TwoArgError(4, "four"), "tb"),
    ("RETRY", ValueError("again"), None),
    ("STARTED", {"pid": 12, "hostname": "w1@host"}, None),
]


@pytest.mark.parametrize("extended", [False, True])
@pytest.mark.parametrize(("status", "result", "tb"), STORED)
def test_result_bytes_identical_to_celery(
    redis_backend: Any, status: str, result: Any, tb: str | None, extended: bool
) -> None:
    app, backend = redis_backend(result_extended=extended)
    request = _request(group="g1", parent_id="p1")
    with mock.patch.object(app, "now", return_value=NOW):
        backend.store_result("tid", result, status, tb, request=request)
    stored = backend.client.get("celery-task-meta-tid")
    mine = encode_result_meta(
        "tid",
        status,
        result,
        tb,
        [],
        NOW,
        "tasks.add",
        [1, 2],
        {"z": 3},
        "w1@host",
        2,
        "q1",
        extended=extended,
        group_id="g1",
        parent_id="p1",
    )
    assert mine == stored
    assert protocol.result_key("tid") == "celery-task-meta-tid"


def test_result_meta_without_request_like_celery(redis_backend: Any) -> None:
    app, backend = redis_backend()
    with mock.patch.object(app, "now", return_value=NOW):
        backend.store_result("tid", 5, "SUCCESS")
        backend.store_result("pend", None, "PENDING")
    assert encode_result_meta("tid", "SUCCESS", 5, date_done=NOW) == backend.client.get(
        "celery-task-meta-tid"
    )
    assert encode_result_meta("pend", "PENDING", None) == backend.client.get(
        "celery-task-meta-pend"
    )


def test_default_date_done_is_now_utc() -> None:
    meta = decode_result_meta(encode_result_meta("t", "SUCCESS", 1))
    done = datetime.fromisoformat(meta["date_done"])
    assert done.tzinfo is not None and abs(datetime.now(timezone.utc) - done) < timedelta(minutes=1)


def test_celery_reads_our_failures(redis_backend: Any) -> None:
    _, backend = redis_backend()
    for exc in (KeyError("k"), Outer.InnerError("inner"), TwoArgError(1, "x")):
        backend.client.set("celery-task-meta-tid", encode_result_meta("tid", "FAILURE", exc))
        theirs = backend.get_task_meta("tid", cache=False)
        assert type(theirs["result"]) is type(exc) and theirs["result"].args == exc.args
        assert theirs["status"] == "FAILURE"


def test_we_read_celery_failures(redis_backend: Any) -> None:
    _, backend = redis_backend()
    backend.store_result("tid", Outer.InnerError("inner", 2), "FAILURE", "tb")
    meta = decode_result_meta(backend.client.get("celery-task-meta-tid"), ["json"])
    assert type(meta["result"]) is Outer.InnerError
    assert meta["result"].args == ("inner", 2)
    assert meta["traceback"] == "tb" and meta["task_id"] == "tid"


def test_pickle_results_interop(redis_backend: Any) -> None:
    app, backend = redis_backend(result_serializer="pickle", result_accept_content=["pickle"])
    backend.store_result("tid", TwoArgError(3, "x"), "FAILURE")
    meta = decode_result_meta(backend.client.get("celery-task-meta-tid"), ["pickle"], "pickle")
    assert isinstance(meta["result"], TwoArgError) and meta["result"].args == (3, "x")
    with pytest.raises(ContentDisallowed):
        decode_result_meta(backend.client.get("celery-task-meta-tid"), ["json"], "pickle")
    mine = encode_result_meta("tid", "FAILURE", Unpicklable("nope"), serializer="pickle")
    rebuilt = decode_result_meta(mine, ["pickle"], "pickle")["result"]
    assert type(rebuilt) is Unpicklable and rebuilt.args == ("nope",)
    backend.client.set(
        "celery-task-meta-tid", encode_result_meta("tid", "SUCCESS", {1, 2}, serializer="pickle")
    )
    assert backend.get_task_meta("tid", cache=False)["result"] == {1, 2}


def test_compressed_result_readable_both_ways(redis_backend: Any) -> None:
    app, backend = redis_backend(result_compression="gzip")
    if not getattr(backend, "compression", None):
        pytest.skip("this Celery version does not compress results")
    backend.store_result("tid", "x" * 1000, "SUCCESS")
    assert decode_result_meta(backend.client.get("celery-task-meta-tid"))["result"] == "x" * 1000
    backend.client.set(
        "celery-task-meta-tid", encode_result_meta("tid", "SUCCESS", "y" * 1000, compression="gzip")
    )
    assert backend.get_task_meta("tid", cache=False)["result"] == "y" * 1000


# -- exceptions ---------------------------------------------------------------------------------


def test_exception_to_meta_matches_celery(redis_backend: Any) -> None:
    _, backend = redis_backend()
    for exc in (KeyError("k"), Outer.InnerError(object()), TwoArgError(1, "x"), ValueError()):
        assert exception_to_meta(exc) == json.loads(json.dumps(backend.prepare_exception(exc)))


@pytest.mark.parametrize(
    "meta",
    [
        {"exc_type": "KeyError", "exc_module": "builtins", "exc_message": ["k"]},
        {"exc_type": "Outer.InnerError", "exc_module": __name__, "exc_message": ["a", 1]},
        {"exc_type": "NotLoadedError", "exc_module": "cd_not_imported_mod", "exc_message": ["m"]},
        {"exc_type": "NoModuleError", "exc_message": "plain string"},
        {"exc_type": "TwoArgError", "exc_module": __name__, "exc_message": ["only one"]},
        {"exc_type": "Missing", "exc_module": "builtins", "exc_message": []},
    ],
)
def test_meta_to_exception_matches_celery(redis_backend: Any, meta: dict[str, Any]) -> None:
    _, backend = redis_backend()
    theirs, mine = backend.exception_to_python(dict(meta)), meta_to_exception(dict(meta))
    assert isinstance(mine, Exception)
    assert type(mine).__qualname__ == type(theirs).__qualname__
    if type(theirs).__module__ in {"builtins", __name__}:
        assert type(mine) is type(theirs)  # the original class, found in sys.modules
    if type(theirs) is Exception:  # the class refused the stored args: both describe it
        assert meta["exc_type"] in str(mine) and meta["exc_type"] in str(theirs)
        assert str(meta["exc_message"]) in str(mine)
    else:
        assert mine.args == theirs.args


def test_meta_to_exception_refuses_non_exceptions() -> None:
    with pytest.raises(SecurityError):
        meta_to_exception({"exc_type": "system", "exc_module": "os", "exc_message": ["id"]})
    with pytest.raises(ValueError, match="type"):
        meta_to_exception({"exc_message": "x"})
    assert meta_to_exception(None) is None
    error = KeyError("x")
    assert meta_to_exception(error) is error


def test_meta_to_exception_never_imports() -> None:
    import sys

    meta = {"exc_type": "Oops", "exc_module": "cd_would_be_imported", "exc_message": ["m"]}
    rebuilt = meta_to_exception(meta)
    assert "cd_would_be_imported" not in sys.modules
    assert type(rebuilt).__name__ == "Oops" and rebuilt.args == ("m",)
    assert type(meta_to_exception(meta)) is type(rebuilt)


def test_unserializable_exception_args_become_repr() -> None:
    meta = exception_to_meta(ValueError(object, 1))
    assert meta["exc_message"][1] == 1 and meta["exc_message"][0].startswith("<class")


# -- properties --------------------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.text()
    | st.datetimes()
    | st.datetimes(timezones=st.just(timezone.utc))
    | st.dates()
    | st.times()
    | st.uuids()
    | st.decimals(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text().filter(lambda k: k != "__type__"), inner, max_size=5)
    ),
    max_leaves=25,
)


def _as_json(value: Any) -> Any:
    """What a JSON round trip yields: tuples become lists."""
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    args=st.lists(json_values, max_size=5),
    kwargs=st.dictionaries(st.text(min_size=1), json_values, max_size=5),
    user_headers=st.dictionaries(
        st.text(min_size=1).map(lambda s: "x-" + s), json_values, max_size=3
    ),
    serializer=st.sampled_from(["json", "pickle"]),
    compression=st.sampled_from([None, "gzip"]),
)
def test_message_roundtrip(
    args: list[Any],
    kwargs: dict[str, Any],
    user_headers: dict[str, Any],
    serializer: str,
    compression: str | None,
) -> None:
    msg = build_task_message(
        "t", args, kwargs, headers=user_headers, serializer=serializer, compression=compression
    )
    wire = TaskMessage.decode(msg.encode())
    assert wire.headers == _as_json(msg.headers)  # JSON envelope: tuples become lists
    assert (wire.body, wire.content_type, wire.properties) == (
        msg.body,
        msg.content_type,
        msg.properties,
    )
    got_args, got_kwargs, embed = decode_body(wire, ["json", "pickle"])
    expected = (_as_json(args), _as_json(kwargs)) if serializer == "json" else (args, kwargs)
    assert (got_args, got_kwargs) == expected
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}


@settings(max_examples=150, deadline=None)
@given(
    result=json_values,
    status=st.sampled_from(["SUCCESS", "STARTED", "PENDING"]),
    extended=st.booleans(),
    args=st.lists(json_values, max_size=3),
)
def test_result_meta_roundtrip(result: Any, status: str, extended: bool, args: list[Any]) -> None:
    data = encode_result_meta(
        "tid", status, result, name="t", args=args, kwargs={}, extended=extended
    )
    meta = decode_result_meta(data)
    assert meta["result"] == _as_json(result) and meta["status"] == status
    assert meta["task_id"] == "tid"
    assert ("args" in meta) is extended and (not extended or meta["args"] == _as_json(args))


@settings(max_examples=100, deadline=None)
@given(
    message=st.lists(json_values, max_size=3), cls=st.sampled_from([ValueError, Outer.InnerError])
)
def test_failure_meta_roundtrip(message: list[Any], cls: type[Exception]) -> None:
    exc = cls(*message)
    rebuilt = decode_result_meta(encode_result_meta("tid", "FAILURE", exc, "tb"))["result"]
    assert type(rebuilt) is cls and list(rebuilt.args) == _as_json(message)


def test_binary_body_is_base64_in_envelope() -> None:
    msg = TaskMessage({"id": "i", "task": "t"}, b"\x80\x81", "application/data", "binary")
    env = json.loads(msg.encode())
    assert base64.b64decode(env["body"]) == b"\x80\x81"
    assert TaskMessage.decode(msg.encode()) == msg


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text()
    | st.datetimes()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=_json_values)
def test_property_cached_json_encoder_writes_what_kombu_writes(value: object) -> None:
    """The hot path's kept encoders write exactly kombu's JSON: Celery reads our results and
    messages byte for byte as its own."""
    from kombu.serialization import dumps as kombu_dumps
    from kombu.utils import json as kjson

    from celery_docket.protocol import _compact_json, _json

    assert _json(value) == kombu_dumps(value, "json")[2]
    assert _compact_json(value) == kjson.dumps(value, separators=(",", ":"))
