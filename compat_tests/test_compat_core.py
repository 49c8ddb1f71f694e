"""What a user observes must be the same on Celery and on celery_docket."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID

import pytest

TIMEOUT = 10


def test_result_state_and_value(system) -> None:
    app = system.make_app()

    @app.task(name="compat.add")
    def add(x, y):
        return x + y

    with system.worker(app):
        r = add.delay(2, 3)
        assert r.get(timeout=TIMEOUT) == 5
        assert r.state == "SUCCESS" and r.successful() and r.ready() and not r.failed()
        assert isinstance(r.date_done, datetime)
        assert app.AsyncResult(r.id).get(timeout=TIMEOUT) == 5


def test_exception_type_message_and_traceback(system) -> None:
    app = system.make_app()

    @app.task(name="compat.fail")
    def fail():
        raise KeyError("missing thing")

    with system.worker(app):
        r = fail.delay()
        with pytest.raises(KeyError) as info:
            r.get(timeout=TIMEOUT)
        assert info.value.args == ("missing thing",)
        assert r.state == "FAILURE" and r.failed()
        assert "KeyError" in r.traceback
        assert isinstance(r.result, KeyError)
        assert r.get(timeout=TIMEOUT, propagate=False).args == ("missing thing",)


def test_json_types_round_trip_like_celery(system) -> None:
    app = system.make_app()

    @app.task(name="compat.echo")
    def echo(value):
        return value

    sent = {
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
        "amount": Decimal("1.25"),
        "pair": (1, 2),
    }
    with system.worker(app):
        got = echo.delay(sent).get(timeout=TIMEOUT)
    assert got["pair"] == [1, 2]
    assert type(got["when"]).__name__ in ("datetime", "str")
    return_types = {k: type(v).__name__ for k, v in got.items()}
    assert return_types == {
        "when": return_types["when"],
        "id": return_types["id"],
        "amount": return_types["amount"],
        "pair": "list",
    }


def test_bound_task_request(system) -> None:
    app = system.make_app()

    @app.task(bind=True, name="compat.req")
    def req(self, x):
        r = self.request
        return {
            "id": r.id,
            "args": list(r.args),
            "kwargs": r.kwargs,
            "retries": r.retries,
            "is_eager": r.is_eager,
            "called_directly": r.called_directly,
            "routing_key": r.delivery_info.get("routing_key"),
            "root_id": r.root_id,
            "parent_id": r.parent_id,
        }

    with system.worker(app):
        r = req.delay(7)
        info = r.get(timeout=TIMEOUT)
    assert info == {
        "id": r.id,
        "args": [7],
        "kwargs": {},
        "retries": 0,
        "is_eager": False,
        "called_directly": False,
        "routing_key": "celery",
        "root_id": r.id,
        "parent_id": None,
    }


def test_retry_then_max_retries_exceeded(system) -> None:
    app = system.make_app()
    seen = []

    @app.task(bind=True, max_retries=2, default_retry_delay=0.05, name="compat.retry")
    def flaky(self):
        seen.append(self.request.retries)
        raise self.retry()

    with system.worker(app):
        r = flaky.delay()
        with pytest.raises(system.exceptions.MaxRetriesExceededError):
            r.get(timeout=TIMEOUT)
    assert seen == [0, 1, 2]


def test_retry_with_exc_reraises_it_when_exhausted(system) -> None:
    app = system.make_app()

    @app.task(bind=True, max_retries=1, name="compat.retry_exc")
    def flaky(self):
        raise self.retry(exc=ValueError("gave up"), countdown=0.05)

    with system.worker(app):
        with pytest.raises(ValueError, match="gave up"):
            flaky.delay().get(timeout=TIMEOUT)


def test_autoretry_for(system) -> None:
    app = system.make_app()
    calls = []

    @app.task(
        autoretry_for=(ConnectionError,),
        retry_kwargs={"max_retries": 3, "countdown": 0.05},
        name="compat.auto",
    )
    def auto():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("flaky network")
        return len(calls)

    with system.worker(app):
        assert auto.delay().get(timeout=TIMEOUT) == 3


def test_custom_base_hooks_order(system) -> None:
    app = system.make_app()
    events = []

    class Base(system.Task):
        def before_start(self, task_id, args, kwargs):
            events.append("before_start")

        def on_success(self, retval, task_id, args, kwargs):
            events.append(("on_success", retval))

        def on_failure(self, exc, task_id, args, kwargs, einfo):
            events.append(("on_failure", type(exc).__name__))

        def after_return(self, status, retval, task_id, args, kwargs, einfo):
            events.append(("after_return", status))

    @app.task(base=Base, name="compat.ok")
    def ok():
        return 1

    @app.task(base=Base, name="compat.bad")
    def bad():
        raise RuntimeError("x")

    with system.worker(app):
        ok.delay().get(timeout=TIMEOUT)
        with pytest.raises(RuntimeError):
            bad.delay().get(timeout=TIMEOUT)
    assert events == [
        "before_start",
        ("on_success", 1),
        ("after_return", "SUCCESS"),
        "before_start",
        ("on_failure", "RuntimeError"),
        ("after_return", "FAILURE"),
    ]


def test_signal_order_and_kwargs(system) -> None:
    app = system.make_app()
    sig = system.signals
    seen = []

    def recorder(name):
        def receiver(sender=None, **kwargs):
            seen.append((name, sorted(k for k in kwargs if k != "signal")))

        return receiver

    receivers = {
        "task_prerun": recorder("task_prerun"),
        "task_success": recorder("task_success"),
        "task_postrun": recorder("task_postrun"),
    }
    for name, receiver in receivers.items():
        getattr(sig, name).connect(receiver, weak=False)

    @app.task(name="compat.sig")
    def t():
        return 1

    try:
        with system.worker(app):
            t.delay().get(timeout=TIMEOUT)
    finally:
        for name, receiver in receivers.items():
            getattr(sig, name).disconnect(receiver)
    assert [s[0] for s in seen] == ["task_prerun", "task_success", "task_postrun"]
    assert seen[0][1] == ["args", "kwargs", "task", "task_id"]
    assert seen[1][1] == ["result", "runtime"]
    assert seen[2][1] == ["args", "kwargs", "retval", "state", "task", "task_id"]


def test_countdown_delays_execution(system) -> None:
    app = system.make_app()

    @app.task(name="compat.now")
    def now():
        return datetime.now(timezone.utc).timestamp()

    with system.worker(app):
        sent = datetime.now(timezone.utc).timestamp()
        ran = now.apply_async(countdown=1).get(timeout=TIMEOUT)
    assert ran - sent >= 0.95


def test_wrong_arguments_raise_type_error_at_call_site(system) -> None:
    app = system.make_app()

    @app.task(name="compat.two")
    def two(a, b):
        return a + b

    with pytest.raises(TypeError) as info:
        two.delay(1)
    assert str(info.value) == "two() missing 1 required positional argument: 'b'"


def test_eager_mode_and_propagation(system) -> None:
    app = system.make_app(task_always_eager=True, task_eager_propagates=True)

    @app.task(name="compat.e")
    def e(x):
        if x < 0:
            raise ValueError("negative")
        return x * 2

    r = e.delay(4)
    assert type(r).__name__ == "EagerResult"
    assert r.get() == 8 and r.state == "SUCCESS"
    with pytest.raises(ValueError):
        e.delay(-1)


def test_eager_retry_raises_retry_when_propagating(system) -> None:
    app = system.make_app(task_always_eager=True, task_eager_propagates=True)

    @app.task(bind=True, max_retries=0, name="compat.er")
    def er(self):
        raise self.retry(countdown=1)

    with pytest.raises(system.exceptions.MaxRetriesExceededError):
        er.delay()


def test_routing_to_queues(system) -> None:
    app = system.make_app(task_routes={"compat.routed": {"queue": "special"}})

    @app.task(name="compat.routed", bind=True)
    def routed(self):
        return self.request.delivery_info.get("routing_key")

    @app.task(name="compat.plain", bind=True)
    def plain(self):
        return self.request.delivery_info.get("routing_key")

    from contextlib import ExitStack

    if system.name == "celery":
        from celery.contrib.testing.worker import start_worker

        app.loader.import_module("celery.contrib.testing.tasks")
        ctx = start_worker(app, pool="solo", perform_ping_check=False, queues=["special", "celery"])
    else:
        from celery_docket.worker import WorkController

        controller = WorkController(
            app, pool="solo", queues=["special", "celery"], setup_logging=False
        )

        class _Ctx:
            def __enter__(self):
                return controller.start_in_thread()

            def __exit__(self, *a):
                controller.stop()

        ctx = _Ctx()
    with ExitStack() as stack:
        stack.enter_context(ctx)
        assert routed.delay().get(timeout=TIMEOUT) == "special"
        assert plain.apply_async(queue="celery").get(timeout=TIMEOUT) == "celery"


def test_chain_passes_results_along(system) -> None:
    app = system.make_app()

    @app.task(name="compat.cadd")
    def add(x, y):
        return x + y

    @app.task(name="compat.cmul")
    def mul(x, y):
        return x * y

    with system.worker(app):
        r = (add.s(2, 2) | mul.s(4)).delay()
        assert r.get(timeout=TIMEOUT) == 16
        assert r.parent.get(timeout=TIMEOUT) == 4


def test_config_namespace_from_object(system) -> None:
    class Settings:
        CELERY_TASK_ALWAYS_EAGER = True
        CELERY_TASK_DEFAULT_QUEUE = "jobs"
        BROKER_URL = "ignored-without-prefix"

    app = system.make_app()
    app.config_from_object(Settings, namespace="CELERY")
    assert app.conf.task_always_eager is True
    assert app.conf.task_default_queue == "jobs"


def test_duplicate_task_names_keep_the_first_and_warn_once(system) -> None:
    """Duplicate task names: @app.task keeps the first, register_task replaces, one warning each."""
    import warnings

    app = system.make_app()
    app.finalize()
    warning = system.exceptions.DuplicateTaskNameWarning

    def first():
        return "first"

    def second():
        return "second"

    def third():
        return "third"

    kept = app.task(name="dup.x")(first)
    with pytest.warns(warning, match="dup.x"):
        again = app.task(name="dup.x")(second)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.task(name="dup.x")(third)  # once per name
        app.task(name="dup.x")(first)  # the same callable is no collision
    assert again is kept and app.tasks["dup.x"]() == "first"

    class Old(system.Task):
        name = "dup.y"

        def run(self):
            return "old"

    class New(system.Task):
        name = "dup.y"

        def run(self):
            return "new"

    app.register_task(Old())
    with pytest.warns(warning, match="dup.y"):
        app.register_task(New())
    assert app.tasks["dup.y"]() == "new"
