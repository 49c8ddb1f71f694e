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


def _wait_state(app, task_id, state):
    import time

    deadline = time.monotonic() + TIMEOUT
    result = app.AsyncResult(task_id)
    while result.state != state and time.monotonic() < deadline:
        time.sleep(0.05)
        result = app.AsyncResult(task_id)
    return result


def test_calling_a_chain_sends_it(system) -> None:
    app = system.make_app()
    add, *_ = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        assert (add.s(1, 1) | add.s(2))().get(timeout=TIMEOUT) == 4
        assert m.chain(add.s(1, 1), add.s(3))().get(timeout=TIMEOUT) == 5


def test_chain_links_go_to_last_task_errbacks_to_every_task(system) -> None:
    app = system.make_app()
    add, _tsum, boom, record = _tasks(app)
    m = _canvas(system)
    sig = add.s(1, 1)
    assert sig.on_error(record.si("x")) is sig
    with system.worker(app):
        cb = record.s().set(task_id=f"chain-cb-{system.name}")
        r = m.chain(add.s(1, 1), add.s(10)).apply_async(link=cb)
        assert r.get(timeout=TIMEOUT) == 12
        assert app.AsyncResult(cb.id).get(timeout=TIMEOUT) == ["seen", 12]
        eb = record.si("failed").set(task_id=f"chain-eb-{system.name}")
        r = m.chain(add.s(1, 1), boom.s()).apply_async(link_error=eb)
        with pytest.raises(ValueError):
            r.get(timeout=TIMEOUT)
        assert app.AsyncResult(eb.id).get(timeout=TIMEOUT) == ["seen", "failed"]
        eb2 = record.si("on-error").set(task_id=f"chain-eb2-{system.name}")
        r = m.chain(add.s(1, 1), boom.s()).on_error(eb2).delay()
        with pytest.raises(ValueError):
            r.get(timeout=TIMEOUT)
        assert app.AsyncResult(eb2.id).get(timeout=TIMEOUT) == ["seen", "on-error"]


def test_failed_chain_step_fails_the_remaining_steps(system) -> None:
    app = system.make_app()
    add, _tsum, boom, _record = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        r = m.chain(boom.s(1), add.s(1), add.s(2)).delay()
        with pytest.raises(ValueError, match="bad 1"):
            r.get(timeout=TIMEOUT)
        last = _wait_state(app, r.id, "FAILURE")
        middle = _wait_state(app, r.parent.id, "FAILURE")
        assert last.state == middle.state == "FAILURE"
        assert "bad 1" in str(last.result)


def test_chord_counts_chains_and_nested_groups(system) -> None:
    """A chain in a chord header counts by its last task; nested groups are flattened."""
    app = system.make_app()
    add, tsum, *_ = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        c = m.chord([m.chain(add.s(1, 1), add.s(10)), add.s(0, 1)], tsum.s())
        assert c.delay().get(timeout=TIMEOUT) == 13
        c = m.chord([add.s(1, 1), m.group(add.s(2, 2), add.s(3, 3))], tsum.s())
        assert c.delay().get(timeout=TIMEOUT) == 12
        g = m.group(add.s(1, 1), m.group(add.s(2, 2), add.s(3, 3)))
        assert g.delay().get(timeout=TIMEOUT) == [2, 4, 6]


def test_chord_first_in_chain_continues_from_body(system) -> None:
    app = system.make_app()
    add, tsum, *_ = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        c = m.chain(m.chord([add.s(1, 1), add.s(2, 2)], tsum.s()), add.s(10))
        assert c.delay().get(timeout=TIMEOUT) == 16
        body_chord = m.chord([add.s(1, 1)], m.chord([tsum.s(), tsum.s()], tsum.s()))
        assert body_chord.delay().get(timeout=TIMEOUT) == 4


def test_nested_canvas_rebuilds_and_links(system) -> None:
    """Nested canvases encode and rebuild from their dict form; links on canvases are read."""
    app = system.make_app()
    add, tsum, _boom, record = _tasks(app)
    m = _canvas(system)
    nested = m.group(m.chain(add.s(1, 1), add.s(1)), m.chord([add.s(2, 2)], tsum.s()))
    rebuilt = m.Signature.from_dict(json_roundtrip(nested), app=app)
    assert type(rebuilt).__name__ == "group"
    sig = add.s(1, 1)
    sig.args = (5, 5)
    assert sig.args == (5, 5)
    single = m.chord(add.s(1, 1), tsum.s())
    assert len(single.tasks) == 1
    with system.worker(app):
        assert rebuilt.delay().get(timeout=TIMEOUT) == [3, 4]
        c = m.chord([add.s(1, 1), add.s(2, 2)], tsum.s())
        c.link(record.s().set(task_id=f"chord-link-{system.name}"))
        assert c.delay().get(timeout=TIMEOUT) == 6
        assert app.AsyncResult(f"chord-link-{system.name}").get(timeout=TIMEOUT) == ["seen", 6]


def json_roundtrip(sig):
    import json

    return json.loads(json.dumps(sig))


def test_group_result_save_restore(system) -> None:
    app = system.make_app()
    add, *_ = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        g = m.group(add.s(1, 1), add.s(2, 2)).delay()
        g.save()
        result_module = __import__(f"{m.__name__}.result", fromlist=["GroupResult"])
        restored = result_module.GroupResult.restore(g.id, app=app)
        assert [r.id for r in restored.results] == [r.id for r in g.results]
        assert restored.get(timeout=TIMEOUT) == [2, 4]


def test_task_replace(system) -> None:
    """A replaced task's place (id, chain continuation, chord membership) goes to its
    replacement: a signature, a chain or a group."""
    app = system.make_app()
    add, tsum, *_ = _tasks(app)
    m = _canvas(system)

    @app.task(bind=True, name="cv.replace_with")
    def replace_with(self, kind, x):
        if kind == "sig":
            return self.replace(add.s(x, 100))
        if kind == "chain":
            return self.replace(add.s(x, 1) | add.s(1000))
        return self.replace(m.group(add.s(x, 1), add.s(x, 2)))

    @app.task(bind=True, name="cv.nesting")
    def nesting(self, depth):
        if depth:
            return self.replace(nesting.s(depth - 1))
        return self.request.replaced_task_nesting

    with system.worker(app):
        assert replace_with.delay("sig", 1).get(timeout=TIMEOUT) == 101
        assert replace_with.delay("chain", 1).get(timeout=TIMEOUT) == 1002
        assert replace_with.delay("group", 1).get(timeout=TIMEOUT) == [2, 3]
        assert (replace_with.s("sig", 1) | add.s(1)).delay().get(timeout=TIMEOUT) == 102
        c = m.chord([replace_with.s("sig", 1), add.s(1, 1)], tsum.s())
        assert c.delay().get(timeout=TIMEOUT) == 103
        assert nesting.delay(2).get(timeout=TIMEOUT) == 2


def test_apply_inside_a_task_sets_parent_id(system) -> None:
    app = system.make_app()
    add, *_ = _tasks(app)

    @app.task(bind=True, name="cv.parent_of_apply")
    def outer(self):
        inner = ids.apply()
        return [self.request.id, inner.result]

    @app.task(bind=True, name="cv.ids")
    def ids(self):
        return self.request.parent_id

    with system.worker(app):
        outer_id, parent = outer.delay().get(timeout=TIMEOUT)
        assert parent == outer_id


def test_frozen_chain_takes_its_last_task_id(system) -> None:
    app = system.make_app()
    add, *_ = _tasks(app)
    last = add.s(2).set(task_id="last-of-chain")
    c = add.s(4) | last
    assert c.id is None
    res = c.freeze()
    assert c.id == res.id == "last-of-chain"


def _redis_backed_app(system, request):
    """Celery's chords across nested groups need its Redis result backend (the layout we
    keep); its in-memory cache backend does not finish them."""
    if system.name == "celery":
        url = request.getfixturevalue("redis_server_url")
        return system.make_app(result_backend=url.rsplit("/", 1)[0] + "/3")
    return system.make_app()


@pytest.mark.redis
def test_chain_through_nested_groups_gets_its_last_value(system, request) -> None:
    """A chain whose middle step is a group holding a chain that ends in a group: the
    group's result is a parent of the last step (its children are its members)."""
    app = _redis_backed_app(system, request)
    add, *_ = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        c = m.chain(
            add.si(1, 0),
            m.group(add.si(1, 100), m.chain(add.si(1, 200), m.group(add.si(1, 1), add.si(1, 2)))),
            add.si(1, 10),
        )
        assert c.delay().get(timeout=TIMEOUT) == 11
        g = m.group(add.si(1, 1), add.si(2, 2)).delay()
        assert [r.get(timeout=TIMEOUT) for r in g.children] == [2, 4]


@pytest.mark.redis
def test_result_set_join_native(system, request) -> None:
    """join_native reads every member per round trip; timeout=0 polls once."""
    from uuid import uuid4

    app = _redis_backed_app(system, request)
    add, *_ = _tasks(app)
    result_mod = system.module(".result")
    with system.worker(app):
        rs = result_mod.ResultSet([add.delay(1, 1), add.delay(2, 2), add.delay(3, 3)], app=app)
        assert rs.join_native(timeout=TIMEOUT) == [2, 4, 6]
        rs.backend._cache.clear()
        assert rs.join_native(timeout=0, interval=30) == [2, 4, 6]
        seen: list = []
        rs.join_native(timeout=TIMEOUT, callback=lambda tid, value: seen.append(value))
        assert sorted(seen) == [2, 4, 6]
        never = result_mod.ResultSet([app.AsyncResult(str(uuid4())) for _ in range(2)], app=app)
        with pytest.raises(system.exceptions.TimeoutError):
            never.join_native(timeout=0, interval=30)


def _stamp_tasks(app):
    @app.task(name="cv.stamps_seen", bind=True)
    def stamps_seen(self, *args):
        return {
            "stamps": dict(self.request.stamps or {}),
            "names": sorted(self.request.stamped_headers or []),
        }

    @app.task(name="cv.stamps_after_retry", bind=True, max_retries=1, default_retry_delay=0)
    def stamps_after_retry(self):
        if not self.request.retries:
            raise self.retry()
        return dict(self.request.stamps or {})

    return stamps_seen, stamps_after_retry


@pytest.mark.redis
def test_stamping_reaches_every_task_of_a_canvas(system, request) -> None:
    """Stamps put by a visitor travel in message headers (not properties) to every task of a
    chain, group and chord body, to callbacks, and survive a retry."""
    app = _redis_backed_app(system, request)
    stamps_seen, stamps_after_retry = _stamp_tasks(app)
    m = _canvas(system)
    published: list[tuple[dict, dict]] = []

    def on_publish(headers=None, properties=None, **kwargs):
        published.append((dict(headers or {}), dict(properties or {})))

    class Visitor(system.module(".canvas").StampingVisitor):
        def on_signature(self, sig, **headers):
            return {"tenant": "acme"}

        def on_group_start(self, group, **headers):
            return {"in_group": 1}

    system.signals.before_task_publish.connect(on_publish, weak=False)
    try:
        with system.worker(app):
            single = stamps_seen.si()
            single.stamp(visitor=Visitor(), run="r1")
            assert single.delay().get(timeout=TIMEOUT) == {
                "stamps": {"tenant": "acme", "run": "r1"},
                "names": ["run", "tenant"],
            }
            headers, properties = published[-1]
            assert headers["stamps"] == {"tenant": "acme", "run": "r1"}
            assert "tenant" not in properties and "stamped_headers" not in properties

            canvas = m.chain(
                stamps_seen.si(),
                m.chord([stamps_seen.si(), stamps_seen.si()], stamps_seen.s()),
            )
            canvas.stamp(visitor=Visitor())
            result = canvas.delay()
            body = result.get(timeout=TIMEOUT)
            # the chord's header stamps (its group's) reach its body too
            assert body["stamps"] == {"tenant": "acme", "in_group": 1}
            members = result.parent.get(timeout=TIMEOUT)
            assert [s["stamps"] for s in members] == [{"tenant": "acme", "in_group": 1}] * 2
            first = result.parent.parent.get(timeout=TIMEOUT)
            assert first["stamps"] == {"tenant": "acme"}

            linked = stamps_seen.si()
            linked.link(stamps_seen.si())
            linked.stamp(run="r2")
            link_id = linked.options["link"][0].freeze().id
            linked.delay().get(timeout=TIMEOUT)
            callback = app.AsyncResult(link_id).get(timeout=TIMEOUT)
            assert callback["stamps"] == {"run": "r2"}

            retried = stamps_after_retry.si()
            retried.stamp(run="r3")
            assert retried.delay().get(timeout=TIMEOUT) == {"run": "r3"}
    finally:
        system.signals.before_task_publish.disconnect(on_publish)


@pytest.mark.redis
def test_chord_member_ending_in_a_group_gives_a_list(system, request) -> None:
    """A header member that is a chain ending in a group hands the body one list."""
    app = _redis_backed_app(system, request)
    add, tsum, _boom, record = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        sig = m.chord(
            m.group(m.chain(add.s(40, 2), m.group(add.s(0), add.s(1))), add.s(1, 1)),
            record.s(),
        )
        assert sig.delay().get(timeout=TIMEOUT) == ["seen", [[42, 43], 2]]


@pytest.mark.redis
def test_chain_of_groups_and_chords_with_partial_args(system, request) -> None:
    """A chain of groups runs every group once (each group before a step becomes a chord);
    a chord first in a chain gets the chain's partial args in its header, sent or eager;
    bare tasks in a chord header are their signatures."""
    app = _redis_backed_app(system, request)
    add, tsum, _boom, record = _tasks(app)
    m = _canvas(system)
    with system.worker(app):
        c = m.chain(
            m.group(add.si(1, 1), add.si(2, 2)),
            m.group(add.si(3, 3), add.si(4, 4), add.si(5, 5)),
            m.group(add.si(6, 6), add.si(0, 0)),
            tsum.s(),
        )
        assert c.delay().get(timeout=TIMEOUT) == 12
        groups_only = m.chain(
            m.group(add.si(1, 1), add.si(2, 2)), m.group(add.si(3, 3), add.si(4, 4))
        )
        assert groups_only.delay().get(timeout=TIMEOUT) == [6, 8]
        with_args = m.chain(m.chord([add.s(1), add.s(2)], tsum.s()), add.s(100))
        assert with_args.apply_async(args=(10,)).get(timeout=TIMEOUT) == 123
        assert with_args.apply(args=(10,)).get(timeout=TIMEOUT) == 123
        bare = m.chord([tsum, tsum], record.s())
        assert bare.apply_async(args=([1, 2],)).get(timeout=TIMEOUT) == ["seen", [3, 3]]


def _wait_for(seen: list, n: int) -> list:
    import time

    deadline = time.monotonic() + TIMEOUT
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a late extra call would show by now
    return sorted(seen)


@pytest.mark.redis
def test_chord_errbacks_on_group_bodies(system, request) -> None:
    """Which errbacks run when a chord with a group body fails: each body task's own (one
    given as a single signature too), the group's own, and the chord's, each once."""
    app = _redis_backed_app(system, request)
    add, tsum, boom, _record = _tasks(app)
    m = _canvas(system)
    seen: list = []

    @app.task(name="cv.note")
    def note(tag):
        seen.append(tag)

    with system.worker(app):
        own = tsum.s().set(link_error=note.si("own"))
        failing = m.chord([add.si(1, 1), boom.si(0)], m.group(own, tsum.s()))
        with pytest.raises(Exception):  # noqa: B017 - ChordError or the header's error
            failing.apply_async().get(timeout=TIMEOUT)
        assert _wait_for(seen, 1) == ["own"]

        seen.clear()
        body = m.group(boom.s(), tsum.s()).set(link_error=note.si("group"))
        result = m.chord([add.si(1, 1)], body).apply_async(link_error=note.si("chord"))
        with pytest.raises(ValueError):
            result.get(timeout=TIMEOUT)
        assert _wait_for(seen, 2) == ["chord", "group"]

        seen.clear()
        nested = m.group(m.chord([add.si(2, 2)], tsum.s()), tsum.s())
        result = m.chord([add.si(1, 1), boom.si(0)], nested).apply_async(
            link_error=note.si("chord")
        )
        with pytest.raises(Exception):  # noqa: B017
            result.get(timeout=TIMEOUT)
        assert _wait_for(seen, 2) == ["chord", "chord"]
