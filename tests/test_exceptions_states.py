"""celery_docket.exceptions and celery_docket.states against Celery's own modules."""

from __future__ import annotations

import datetime
import pickle
import sys
import warnings
from collections.abc import Callable
from decimal import Decimal
from types import ModuleType
from typing import Any

import click
import kombu.exceptions
import pytest
from hypothesis import given
from hypothesis import strategies as st

from celery_docket import exceptions as ours
from celery_docket import states as our_states

celery_exceptions: Any = pytest.importorskip("celery.exceptions")
celery_states: Any = pytest.importorskip("celery.states")

CELERY_NAMES = [n for n in celery_exceptions.__all__ if n != "reraise"]
BASES = [
    BaseException,
    Exception,
    KeyError,
    LookupError,
    SystemExit,
    Warning,
    UserWarning,
    DeprecationWarning,
    PendingDeprecationWarning,
    kombu.exceptions.KombuError,
    click.ClickException,
]


# -- exceptions: names and hierarchy --------------------------------------------------------


def test_every_celery_exception_name_exists() -> None:
    missing = [n for n in celery_exceptions.__all__ if not hasattr(ours, n)]
    assert missing == []
    assert set(celery_exceptions.__all__) <= set(ours.__all__)


@pytest.mark.parametrize("name", CELERY_NAMES)
def test_subclass_relations_match_celery(name: str) -> None:
    mine, theirs = getattr(ours, name), getattr(celery_exceptions, name)
    for other in CELERY_NAMES:
        assert issubclass(mine, getattr(ours, other)) == issubclass(
            theirs, getattr(celery_exceptions, other)
        ), (name, other)
    for base in BASES:
        assert issubclass(mine, base) == issubclass(theirs, base), (name, base)


@pytest.mark.parametrize(
    "name", ["SoftTimeLimitExceeded", "TimeLimitExceeded", "WorkerLostError", "Terminated"]
)
def test_pool_errors_are_our_own_plain_exceptions(name: str) -> None:
    cls = getattr(ours, name)
    assert cls.__module__ == "celery_docket.exceptions"
    assert cls.__bases__ == (Exception,)


def test_operational_error_is_kombus() -> None:
    # Shared on purpose: ``except kombu.exceptions.OperationalError`` keeps working.
    assert ours.OperationalError is kombu.exceptions.OperationalError
    assert ours.OperationalError is celery_exceptions.OperationalError


def test_our_additions() -> None:
    err = ours.PayloadTooLarge(2048, 1024)
    assert isinstance(err, ours.CeleryError)
    assert (err.size, err.limit) == (2048, 1024)
    assert "2048" in str(err) and "1024" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert (again.size, again.limit, str(again)) == (2048, 1024, str(err))

    assert issubclass(ours.BrokerUnavailable, ours.OperationalError)
    assert issubclass(ours.BrokerUnavailable, kombu.exceptions.KombuError)
    with pytest.raises(kombu.exceptions.OperationalError):
        raise ours.BrokerUnavailable("redis://localhost:6379 refused connection")
    assert ours.PayloadTooLarge.__doc__ and ours.BrokerUnavailable.__doc__


# -- exceptions: str / repr / attributes ----------------------------------------------------

Factory = Callable[[ModuleType], BaseException]

CASES: list[tuple[str, Factory]] = [
    ("retry-empty", lambda m: m.Retry()),
    ("retry-msg", lambda m: m.Retry("custom message")),
    ("retry-exc", lambda m: m.Retry(exc=KeyError("x"))),
    ("retry-exc-when", lambda m: m.Retry(exc=KeyError("x"), when=3)),
    ("retry-msg-exc-when", lambda m: m.Retry("m", exc=ValueError(1), when=5)),
    ("retry-str-exc", lambda m: m.Retry(exc="it broke", when=3.5)),
    ("retry-empty-str-exc", lambda m: m.Retry(exc="")),
    ("retry-int-exc", lambda m: m.Retry(exc=5)),
    ("retry-zero-exc", lambda m: m.Retry(exc=0, when=0)),
    ("retry-datetime", lambda m: m.Retry(when=datetime.datetime(2024, 1, 1))),
    ("retry-timedelta", lambda m: m.Retry(when=datetime.timedelta(seconds=3))),
    ("retry-decimal", lambda m: m.Retry(when=Decimal("1.5"))),
    ("retry-str-when", lambda m: m.Retry(when="5")),
    ("retry-positional", lambda m: m.Retry(None, None, 5, True, "sig")),
    ("reject-default", lambda m: m.Reject()),
    ("reject", lambda m: m.Reject("why", requeue=True)),
    ("ignore", lambda m: m.Ignore()),
    ("ignore-msg", lambda m: m.Ignore("x")),
    ("maxretries-empty", lambda m: m.MaxRetriesExceededError()),
    (
        "maxretries",
        lambda m: m.MaxRetriesExceededError("a", "b", task_args=(1,), task_kwargs={"a": 1}),
    ),
    ("getmeta-empty", lambda m: m.BackendGetMetaError()),
    ("getmeta", lambda m: m.BackendGetMetaError("boom", task_id="t1")),
    ("store-empty", lambda m: m.BackendStoreError()),
    ("store", lambda m: m.BackendStoreError("x", state="SUCCESS", task_id="t1")),
    ("notregistered", lambda m: m.NotRegistered("tasks.add")),
    ("notregistered-empty", lambda m: m.NotRegistered()),
    ("notregistered-2", lambda m: m.NotRegistered("a", "b")),
    ("queuenotfound", lambda m: m.QueueNotFound("q")),
    ("timeout", lambda m: m.TimeoutError("The operation timed out.")),
    ("soft-empty", lambda m: m.SoftTimeLimitExceeded()),
    ("soft", lambda m: m.SoftTimeLimitExceeded(3)),
    ("hard", lambda m: m.TimeLimitExceeded(3.0)),
    ("hard-2", lambda m: m.TimeLimitExceeded(1, 2)),
    ("lost", lambda m: m.WorkerLostError("Worker exited prematurely")),
    ("terminated", lambda m: m.Terminated(15)),
    ("revoked", lambda m: m.TaskRevokedError("revoked")),
    ("chord", lambda m: m.ChordError("dep failed")),
    ("invalid", lambda m: m.InvalidTaskError("bad")),
    ("improperly", lambda m: m.ImproperlyConfigured("bad config")),
    ("shutdown", lambda m: m.WorkerShutdown(0)),
    ("terminate", lambda m: m.WorkerTerminate(1)),
]


def _state(exc: BaseException) -> dict[str, str]:
    return {k: repr(v) for k, v in vars(exc).items()}


@pytest.mark.parametrize("factory", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_str_repr_attributes_match_celery(factory: Factory) -> None:
    mine, theirs = factory(ours), factory(celery_exceptions)
    assert str(mine) == str(theirs)
    assert repr(mine) == repr(theirs)
    assert _state(mine) == _state(theirs)
    assert len(mine.args) == len(theirs.args)


def test_retry_attributes_and_humanize() -> None:
    exc = KeyError("x")
    r = ours.Retry("m", exc=exc, when=5, is_eager=True, sig="sig")
    assert (r.message, r.exc, r.when, r.is_eager, r.sig) == ("m", exc, 5, True, "sig")
    assert r.args[0] is r  # as in Celery
    assert r.humanize() == "in 5s"
    assert ours.Retry().humanize() == celery_exceptions.Retry().humanize() == "at None"
    with pytest.raises(TypeError):
        ours.Retry(bogus=1)  # type: ignore[call-arg]


when_values = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.datetimes(),
    st.text(max_size=8),
)
exc_values = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(),
    st.builds(ValueError, st.text(max_size=20)),
)


@given(message=st.one_of(st.none(), st.text(max_size=20)), exc=exc_values, when=when_values)
def test_retry_matches_celery_for_any_input(message: str | None, exc: Any, when: Any) -> None:
    mine = ours.Retry(message, exc=exc, when=when)
    theirs = celery_exceptions.Retry(message, exc=exc, when=when)
    assert str(mine) == str(theirs)
    assert repr(mine) == repr(theirs)
    assert mine.humanize() == theirs.humanize()
    assert (mine.excs, mine.exc) == (theirs.excs, theirs.exc)


def test_pickle_roundtrips() -> None:
    r = pickle.loads(pickle.dumps(ours.Retry("m", exc=ValueError(1), when=2, is_eager=True)))
    assert (r.message, repr(r.exc), r.when, r.is_eager, r.sig) == (
        "m",
        "ValueError(1)",
        2,
        False,
        None,
    )
    # A string exc survives the round trip (Celery loses it; we keep it).
    r = pickle.loads(pickle.dumps(ours.Retry(exc="why", when=1)))
    assert (r.exc, r.excs, str(r)) == (None, "why", "Retry in 1s: why")

    rej = pickle.loads(pickle.dumps(ours.Reject("r", requeue=True)))
    assert (rej.reason, rej.requeue) == ("r", True)
    m = pickle.loads(pickle.dumps(ours.MaxRetriesExceededError("x", task_args=(1,))))
    assert (m.args, m.task_args, m.task_kwargs) == (("x",), (1,), {})
    b = pickle.loads(pickle.dumps(ours.BackendStoreError("x", state="S", task_id="t")))
    assert (b.state, b.task_id) == ("S", "t")
    c = pickle.loads(pickle.dumps(ours.CeleryCommandException("m", 3)))
    assert (c.message, c.exit_code) == ("m", 3)


def test_celery_command_exception() -> None:
    mine, theirs = (
        ours.CeleryCommandException("m", 3),
        celery_exceptions.CeleryCommandException("m", 3),
    )
    assert (mine.message, mine.exit_code, str(mine)) == (
        theirs.message,
        theirs.exit_code,
        str(theirs),
    )
    assert repr(mine) == repr(theirs)


def _tb_depth(tb: Any) -> int:
    depth = 0
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    return depth


@pytest.mark.parametrize("with_tb", [True, False])
def test_reraise_matches_celery(with_tb: bool) -> None:
    def raised() -> tuple[type[BaseException], BaseException, Any]:
        try:
            raise ValueError("x")
        except ValueError:
            tp, val, tb = sys.exc_info()
            assert tp is not None and val is not None
            return tp, val, tb

    depths = []
    for module in (ours, celery_exceptions):
        tp, val, tb = raised()
        with pytest.raises(ValueError) as info:
            module.reraise(tp, val, tb if with_tb else None)
        assert info.value is val
        depths.append(_tb_depth(info.value.__traceback__))
    assert depths[0] == depths[1]


def test_warning_categories() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("x", ours.AlwaysEagerIgnored, stacklevel=1)
        warnings.warn("y", ours.CDeprecationWarning, stacklevel=1)
    assert [w.category for w in caught] == [ours.AlwaysEagerIgnored, ours.CDeprecationWarning]


# -- states ---------------------------------------------------------------------------------


def _public_values(module: ModuleType) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and not callable(value) and not isinstance(value, ModuleType)
    }


def test_every_public_state_name_has_the_same_value() -> None:
    theirs = _public_values(celery_states)
    mine = _public_values(our_states)
    assert theirs  # sanity: the oracle exposes constants
    for name, value in theirs.items():
        assert name in mine, name
        assert mine[name] == value, name
        assert type(mine[name]) is type(value), name
    assert set(celery_states.__all__) <= set(our_states.__all__)
    assert callable(our_states.precedence) and isinstance(our_states.state, type)


STATE_SAMPLES = sorted(celery_states.ALL_STATES | {"REJECTED", "IGNORED", "FOO", "BAR", ""})


@pytest.mark.parametrize("name", [*STATE_SAMPLES, None])
def test_precedence_matches(name: str | None) -> None:
    assert our_states.precedence(name) == celery_states.precedence(name)


@pytest.mark.parametrize("left", STATE_SAMPLES)
def test_state_ordering_matches(left: str) -> None:
    for right in STATE_SAMPLES:
        a, b = our_states.state(left), our_states.state(right)
        c, d = celery_states.state(left), celery_states.state(right)
        assert (a < b, a <= b, a > b, a >= b, a == b) == (c < d, c <= d, c > d, c >= d, c == d)
        # comparing against a plain str on the right-hand side
        assert (a < right, a > right) == (c < right, c > right)


@given(st.lists(st.sampled_from(STATE_SAMPLES) | st.text(max_size=6), max_size=12))
def test_sorting_matches_celery(names: list[str]) -> None:
    mine = sorted(our_states.state(n) for n in names)
    theirs = sorted(celery_states.state(n) for n in names)
    assert [str(s) for s in mine] == [str(s) for s in theirs]
    assert max(map(our_states.state, names), default=None) == max(
        map(celery_states.state, names), default=None
    )


def test_state_is_still_a_string() -> None:
    s = our_states.state("SUCCESS")
    assert s == "SUCCESS" and hash(s) == hash("SUCCESS") and repr(s) == "'SUCCESS'"
    assert our_states.state(our_states.SUCCESS) > our_states.state(our_states.PENDING)
