"""celery_docket.signals: each scenario runs on our Signal and on Celery's, and must agree."""

from __future__ import annotations

import gc
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from celery_docket import exceptions as our_exceptions
from celery_docket import signals as our_signals
from celery_docket.signals import Signal

celery_signals: Any = pytest.importorskip("celery.signals")
CelerySignal: Any = pytest.importorskip("celery.utils.dispatch.signal").Signal

BOTH = pytest.mark.parametrize("impl", [Signal, CelerySignal], ids=["ours", "celery"])


def on_both(scenario: Callable[[Any], Any]) -> Any:
    """Run ``scenario`` against both implementations; return ours after asserting equality."""
    mine, theirs = scenario(Signal), scenario(CelerySignal)
    assert mine == theirs
    return mine


def names(responses: list[tuple[Any, Any]]) -> list[tuple[str, Any]]:
    """Make a send() result comparable across implementations."""
    out = []
    for receiver, response in responses:
        if isinstance(response, BaseException):
            response = (type(response).__name__, str(response))
        out.append((receiver.__name__, response))
    return out


class Sender:
    """A sender object; equality deliberately ignores identity to prove identity is used."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sender)

    __hash__ = object.__hash__

    def method(self) -> None:  # used as a sender
        pass


class Listener:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def on_signal(self, sender: Any = None, **kwargs: Any) -> str:
        self.log.append("method")
        return "from-method"


# -- send / connect forms -------------------------------------------------------------------


def test_send_passes_signal_sender_and_named_arguments() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl(name="s")
        seen: list[Any] = []

        def receiver(**kwargs: Any) -> str:
            seen.append(kwargs)
            return "ok"

        sig.connect(receiver)
        responses = sig.send(sender="me", a=1, b=2)
        assert seen[0]["signal"] is sig
        assert responses[0][0] is receiver
        return [sorted((k, v) for k, v in kw.items() if k != "signal") for kw in seen], names(
            responses
        )

    assert on_both(scenario) == ([[("a", 1), ("b", 2), ("sender", "me")]], [("receiver", "ok")])


def test_connect_forms_return_the_function() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()

        def plain(**kwargs: Any) -> str:
            return "plain"

        assert sig.connect(plain) is plain

        @sig.connect
        def bare(**kwargs: Any) -> str:
            return "bare"

        @sig.connect(sender="only-me")
        def filtered(**kwargs: Any) -> str:
            return "filtered"

        @sig.connect()
        def called(**kwargs: Any) -> str:
            return "called"

        def positional_sender(**kwargs: Any) -> str:
            return "positional"

        sig.connect(positional_sender, "only-me")
        assert callable(bare) and callable(filtered) and callable(called)
        return names(sig.send(sender="only-me")), names(sig.send(sender="other"))

    assert on_both(scenario) == (
        [
            ("plain", "plain"),
            ("bare", "bare"),
            ("filtered", "filtered"),
            ("called", "called"),
            ("positional_sender", "positional"),
        ],
        [("plain", "plain"), ("bare", "bare"), ("called", "called")],
    )


def test_receiver_keyword_form() -> None:
    sig = Signal()

    def receiver(**kwargs: Any) -> int:
        return 1

    assert sig.connect(receiver=receiver) is receiver
    assert names(sig.send(None)) == [("receiver", 1)]


@BOTH
def test_receiver_must_accept_kwargs(impl: Any) -> None:
    def no_kwargs(sender: Any) -> None:
        pass

    class CallableNoKwargs:
        def __call__(self, sender: Any) -> None:
            pass

    sig = impl()
    with pytest.raises(ValueError):
        sig.connect(no_kwargs)
    with pytest.raises(ValueError):
        sig.connect(CallableNoKwargs(), weak=False)
    assert sig.receivers == []


def test_no_receivers_and_send_robust() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()
        empty = sig.send(sender=None)

        def receiver(**kwargs: Any) -> str:
            return "r"

        sig.connect(receiver)
        return empty, names(sig.send_robust(sender=None)), sig.has_listeners()

    assert on_both(scenario) == ([], [("receiver", "r")], True)


# -- sender filtering ----------------------------------------------------------------------


def test_string_senders_match_by_value() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()

        def receiver(**kwargs: Any) -> Any:
            return kwargs["sender"]

        sig.connect(receiver, sender="tasks.add")
        built = "".join(["tasks", ".", "add"])  # equal but a different object
        return (
            names(sig.send(sender=built)),
            names(sig.send(sender="tasks.mul")),
            names(sig.send(sender=None)),
            sig.has_listeners(built),
            sig.has_listeners(),
        )

    assert on_both(scenario) == ([("receiver", "tasks.add")], [], [], True, False)


def test_object_senders_match_by_identity() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()
        one, two = Sender(), Sender()
        assert one == two

        def receiver(**kwargs: Any) -> str:
            return "hit"

        def anyone(**kwargs: Any) -> str:
            return "any"

        sig.connect(receiver, sender=one)
        sig.connect(anyone)
        return (
            names(sig.send(sender=one)),
            names(sig.send(sender=two)),
            sig.has_listeners(one),
            sig.has_listeners(two),
        )

    assert on_both(scenario) == (
        [("receiver", "hit"), ("anyone", "any")],
        [("anyone", "any")],
        True,
        True,
    )


def test_bound_method_sender_matches_same_instance_only() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()
        one, two = Sender(), Sender()

        def receiver(**kwargs: Any) -> str:
            return "hit"

        sig.connect(receiver, sender=one.method)
        # a fresh bound-method object for the same instance still matches
        return names(sig.send(sender=one.method)), names(sig.send(sender=two.method))

    assert on_both(scenario) == ([("receiver", "hit")], [])


def test_same_receiver_for_two_senders() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()

        def receiver(**kwargs: Any) -> Any:
            return kwargs["sender"]

        sig.connect(receiver, sender="a")
        sig.connect(receiver, sender="b")
        sig.connect(receiver, sender="a")  # duplicate: ignored
        out = (names(sig.send("a")), names(sig.send("b")), len(sig.receivers))
        disconnected = sig.disconnect(receiver, sender="a")
        return (*out, disconnected, names(sig.send("a")), names(sig.send("b")))

    assert on_both(scenario) == (
        [("receiver", "a")],
        [("receiver", "b")],
        2,
        True,
        [],
        [("receiver", "b")],
    )


# -- dedup / disconnect --------------------------------------------------------------------


def test_dispatch_uid_dedup_and_disconnect() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()

        def first(**kwargs: Any) -> int:
            return 1

        def second(**kwargs: Any) -> int:
            return 2

        sig.connect(first, dispatch_uid="uid")
        sig.connect(second, dispatch_uid="uid")  # same uid: ignored
        sig.connect(second, dispatch_uid="uid", sender="x")  # same uid, other sender: kept
        out = [names(sig.send(None)), names(sig.send("x"))]
        out.append(sig.disconnect(second))  # connected by uid, so not found by function
        out.append(sig.disconnect(dispatch_uid="uid"))
        out.append(sig.disconnect(dispatch_uid="uid"))
        out.append(names(sig.send("x")))
        out.append(sig.disconnect(dispatch_uid="uid", sender="x"))
        out.append(sig.receivers)
        return out

    assert on_both(scenario) == [
        [("first", 1)],
        [("first", 1), ("second", 2)],
        False,
        True,
        False,
        [("second", 2)],
        True,
        [],
    ]


def test_connecting_twice_calls_once_and_disconnect_returns_bool() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()
        calls: list[int] = []

        def receiver(**kwargs: Any) -> None:
            calls.append(1)

        sig.connect(receiver)
        sig.connect(receiver)
        sig.send(None)
        return len(calls), sig.disconnect(receiver), sig.disconnect(receiver), sig.send(None)

    assert on_both(scenario) == (1, True, False, [])


@BOTH
def test_disconnect_weak_argument_warns(impl: Any) -> None:
    sig = impl()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sig.disconnect(lambda **kw: None, weak=True) is False
    assert [w.category.__name__ for w in caught] == ["CDeprecationWarning"]
    if impl is Signal:
        assert caught[0].category is our_exceptions.CDeprecationWarning


# -- weak references -----------------------------------------------------------------------


def test_weak_function_receiver_disappears() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()

        def receiver(**kwargs: Any) -> int:
            return 1

        def strong(**kwargs: Any) -> int:
            return 2

        sig.connect(receiver)
        sig.connect(strong, weak=False)
        before = names(sig.send(None))
        del receiver
        gc.collect()
        after = names(sig.send(None))
        # dead entries are pruned on the next lookup
        return before, after, len(sig.receivers), sig.has_listeners()

    assert on_both(scenario) == ([("receiver", 1), ("strong", 2)], [("strong", 2)], 1, True)


def test_weak_bound_method_receiver() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()
        log: list[str] = []
        listener = Listener(log)
        sig.connect(listener.on_signal)  # the bound-method object is temporary
        gc.collect()
        first = names(sig.send(None))
        del listener
        gc.collect()
        return first, names(sig.send(None)), sig.has_listeners(), log

    assert on_both(scenario) == ([("on_signal", "from-method")], [], False, ["method"])


def test_strong_bound_method_receiver_keeps_instance_alive() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()
        log: list[str] = []
        sig.connect(Listener(log).on_signal, weak=False)
        gc.collect()
        return names(sig.send(None)), log

    assert on_both(scenario) == ([("on_signal", "from-method")], ["method"])


def test_two_instances_same_method_are_separate_receivers() -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()
        log: list[str] = []
        a, b = Listener(log), Listener(log)
        sig.connect(a.on_signal)
        sig.connect(b.on_signal)
        sig.connect(a.on_signal)
        first = len(sig.send(None))
        sig.disconnect(a.on_signal)
        return first, len(sig.send(None)), len(log)

    assert on_both(scenario) == (2, 1, 3)


# -- errors in receivers ------------------------------------------------------------------


def test_receiver_exceptions_are_returned_and_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def scenario(impl: Any) -> Any:
        sig = impl()

        def broken(**kwargs: Any) -> None:
            raise KeyError("boom")

        def fine(**kwargs: Any) -> str:
            return "fine"

        sig.connect(broken)
        sig.connect(fine)
        responses = sig.send(sender=None)
        assert isinstance(responses[0][1], KeyError)
        assert responses[0][1].__traceback__ is not None
        return names(responses)

    with caplog.at_level(logging.ERROR):
        assert on_both(scenario) == [("broken", ("KeyError", "'boom'")), ("fine", "fine")]
    ours_records = [r for r in caplog.records if r.name == "celery_docket.signals"]
    assert len(ours_records) == 1
    assert ours_records[0].levelno == logging.ERROR and ours_records[0].exc_info
    assert "boom" in ours_records[0].getMessage()


@BOTH
def test_base_exceptions_propagate(impl: Any) -> None:
    sig = impl()

    def stop(**kwargs: Any) -> None:
        raise SystemExit(3)

    sig.connect(stop)
    with pytest.raises(SystemExit):
        sig.send(None)


# -- retry=True (ours only: Celery sleeps for real between attempts) ----------------------


def test_retry_receiver(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    delays: list[float] = []
    monkeypatch.setattr(our_signals, "_sleep", delays.append)
    sig = Signal()
    attempts: list[int] = []

    def flaky(**kwargs: Any) -> str:
        attempts.append(1)
        if len(attempts) < 4:
            raise ConnectionError("down")
        return "up"

    wrapper = sig.connect(flaky, retry=True)
    assert wrapper is not flaky and wrapper.__name__ == "flaky"
    del flaky
    gc.collect()  # retry implies a strong reference
    with caplog.at_level(logging.ERROR):
        responses = sig.send(None)
    assert [r for _, r in responses] == ["up"]
    assert len(attempts) == 4
    assert delays == [2.0, 4.0, 6.0]
    assert sum("Retrying" in r.getMessage() for r in caplog.records) == 3


def test_retry_receiver_can_be_disconnected_by_original(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(our_signals, "_sleep", lambda _delay: None)
    sig = Signal()

    def receiver(**kwargs: Any) -> int:
        return 1

    sig.connect(receiver, retry=True)
    sig.connect(receiver, retry=True)
    assert len(sig.receivers) == 1
    assert sig.disconnect(receiver) is True
    assert sig.receivers == []

    def no_kwargs() -> None:
        pass

    with pytest.raises(ValueError):
        sig.connect(no_kwargs, retry=True)


def test_retry_delay_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    monkeypatch.setattr(our_signals, "_sleep", delays.append)
    sig = Signal()
    attempts: list[int] = []

    def flaky(**kwargs: Any) -> None:
        attempts.append(1)
        if len(attempts) < 20:
            raise RuntimeError

    sig.connect(flaky, retry=True)
    logging.getLogger("celery_docket.signals").disabled = True
    try:
        sig.send(None)
    finally:
        logging.getLogger("celery_docket.signals").disabled = False
    assert max(delays) == our_signals.RETRY_INTERVAL_MAX and len(delays) == 19


# -- threads --------------------------------------------------------------------------------


def test_concurrent_connect_send_disconnect() -> None:
    sig = Signal()
    errors: list[BaseException] = []
    keep: list[Callable[..., Any]] = []
    start = threading.Barrier(8)

    def make_receiver(i: int) -> Callable[..., Any]:
        def receiver(**kwargs: Any) -> int:
            return i

        return receiver

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(200):
                receiver = make_receiver(i)
                keep.append(receiver)
                sig.connect(receiver, dispatch_uid=(n, i))
                sig.send(sender=None)
                if i % 2:
                    assert sig.disconnect(dispatch_uid=(n, i))
                if i % 7 == 0:
                    sig.connect(make_receiver(-1))  # dies at once: exercises pruning
        except BaseException as exc:  # noqa: BLE001  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gc.collect()
    assert errors == []
    assert len(sig.send(None)) == 8 * 100
    assert len(sig.receivers) == 8 * 100


# -- the built-in signals -------------------------------------------------------------------

SKIPPED = {n for n in celery_signals.__all__ if n.startswith("eventlet_")}
EXPECTED = [n for n in celery_signals.__all__ if n not in SKIPPED] + [
    "import_modules",
    "user_preload_options",
]


@pytest.mark.parametrize("name", EXPECTED)
def test_builtin_signal_matches_celery(name: str) -> None:
    mine, theirs = getattr(our_signals, name), getattr(celery_signals, name)
    assert isinstance(mine, Signal)
    assert mine.name == theirs.name == name
    assert mine.providing_args == theirs.providing_args
    assert mine.use_caching == theirs.use_caching
    assert name in our_signals.__all__
    doc = mine.__doc__
    assert doc and doc != Signal.__doc__ and "sender" in doc
    for arg in mine.providing_args:
        assert f"``{arg}``" in doc, (name, arg)


def test_builtin_signals_are_distinct_objects() -> None:
    objs = [getattr(our_signals, n) for n in EXPECTED]
    assert len({id(o) for o in objs}) == len(objs)


def test_repr_and_providing_args() -> None:
    def scenario(impl: Any) -> Any:
        positional = impl(["a"])
        named = impl(name="x", providing_args={"only"})
        return repr(positional), str(named), positional.providing_args, named.name

    assert on_both(scenario) == (
        "<Signal: None providing_args={'a'}>",
        "<Signal: x providing_args={'only'}>",
        {"a"},
        "x",
    )
