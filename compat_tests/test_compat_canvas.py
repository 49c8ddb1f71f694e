"""Canvas on Celery and celery_docket: signatures, chain, group, chord, links."""

from __future__ import annotations

import pytest

TIMEOUT = 15


def _tasks(app):
    @app.task(name="cv.add")
    def add(x, y):
        return x + y

    @app.task(name="cv.tsum")
    def tsum(xs):
        return sum(xs)

    @app.task(name="cv.boom")
    def boom(x):
        raise ValueError(f"bad {x}")

    @app.task(name="cv.record")
    def record(value):
        return ["seen", value]

    return add, tsum, boom, record


def _canvas(system):
    if system.name == "celery":
        import celery as mod
    else:
        import celery_docket as mod
    return mod


def test_signature_partials_and_immutability(system) -> None:
    app = system.make_app()
    add, *_ = _tasks(app)
    sig = add.s(2)
    assert sig.args == (2,) and sig["task"] == "cv.add"
    assert dict(sig)["subtask_type"] is None
    assert sig.clone(args=(3,)).args == (3, 2)
    assert add.si(1, 1).immutable
    with system.worker(app):
        assert sig.delay(5).get(timeout=TIMEOUT) == 7
        assert add.si(1, 1).apply_async((100,)).get(timeout=TIMEOUT) == 2


def test_chain_group_chord(system) -> None:
    app = system.make_app()
    add, tsum, _boom, _record = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        assert (add.s(1, 1) | add.s(10) | add.s(100)).delay().get(timeout=TIMEOUT) == 112
        g = m.group(add.s(i, i) for i in range(6)).delay()
        assert g.get(timeout=TIMEOUT) == [0, 2, 4, 6, 8, 10]
        assert g.completed_count() == 6 and g.successful()
        assert m.chord([add.s(i, 1) for i in range(5)])(tsum.s()).get(timeout=TIMEOUT) == 15
        upgraded = (m.group(add.s(i, 0) for i in range(4)) | tsum.s()).delay()
        assert upgraded.get(timeout=TIMEOUT) == 6
        nested = m.chain(add.s(1, 2), m.group(add.s(10), add.s(20)), tsum.s()).delay()
        assert nested.get(timeout=TIMEOUT) == 36


@pytest.mark.redis
def test_chord_header_failure_is_a_chord_error(system, request) -> None:
    """A failed chord header: get() raises its error, the body is stored as ChordError.

    The oracle uses Celery's Redis result backend (the layout we keep): its cache backend
    stores chord failures differently."""
    if system.name == "celery":
        url = request.getfixturevalue("redis_server_url")
        app = system.make_app(result_backend=url.rsplit("/", 1)[0] + "/3")
    else:
        app = system.make_app()
    add, tsum, boom, _record = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        r = m.chord([add.s(1, 1), boom.s(2)])(tsum.s())
        # get() follows parents: the failed header task's own error is raised
        with pytest.raises(ValueError, match="bad 2"):
            r.get(timeout=TIMEOUT)
        body = app.AsyncResult(r.id)
        deadline = __import__("time").monotonic() + TIMEOUT
        while body.state != "FAILURE" and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
            body = app.AsyncResult(r.id)
        # the body itself is stored as FAILURE with ChordError, never run
        assert body.state == "FAILURE"
        assert type(body.result).__name__ == "ChordError"
        assert "raised ValueError('bad 2')" in str(body.result)


def test_link_and_link_error(system) -> None:
    app = system.make_app()
    add, _tsum, boom, record = _tasks(app)
    with system.worker(app):
        linked = record.s()
        r = add.apply_async((2, 3), link=linked.set(task_id="link-ok-" + system.name))
        assert r.get(timeout=TIMEOUT) == 5
        follow = app.AsyncResult("link-ok-" + system.name)
        assert follow.get(timeout=TIMEOUT) == ["seen", 5]
        err = record.si("failed").set(task_id="link-err-" + system.name)
        r = boom.apply_async((1,), link_error=err)
        with pytest.raises(ValueError):
            r.get(timeout=TIMEOUT)
        assert app.AsyncResult("link-err-" + system.name).get(timeout=TIMEOUT) == ["seen", "failed"]


def test_map_starmap_chunks(system) -> None:
    """task.map/starmap run in one task; task.chunks splits into starmap tasks."""
    app = system.make_app()
    add, *_ = _tasks(app)

    @app.task(name="cv.dbl")
    def dbl(x):
        return 2 * x

    assert dict(dbl.map([1]))["task"] == "celery.map"
    assert dict(add.chunks([(1, 1)], 1))["task"] == "celery.chunks"
    with system.worker(app):
        assert dbl.map([1, 2, 3]).delay().get(timeout=TIMEOUT) == [2, 4, 6]
        assert add.starmap([(1, 2), (3, 4)]).delay().get(timeout=TIMEOUT) == [3, 7]
        chunked = add.chunks([(i, i) for i in range(5)], 2)
        assert chunked.delay().get(timeout=TIMEOUT) == [[0, 2], [4, 6], [8]]
        assert len(chunked.group().tasks) == 3
