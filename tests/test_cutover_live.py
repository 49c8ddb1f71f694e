"""A rolling deploy from a real Celery fleet to celery_docket, and the way back (issue 16).

A real Celery producer (this process) and a real ``celery worker`` (a subprocess, solo pool)
share a throwaway redis-server with celery_docket workers (subprocesses, ``--celery-intake``).
The Celery worker reserves ETA tasks, is killed half-way (SIGKILL, once idle, so Celery's own
at-most-once window between BRPOP and its unacked write is not what is measured), and ours take
over: what it had reserved once ``docket_celery_unacked_age`` passed, countdowns, a chain, a
chord. That age stands in for a short visibility timeout: Celery's own fleet keeps the
default, because a live Celery worker with a short one hands its own ETA reservations back
to the list and re-reserves them (kombu's behaviour, Celery's duplicate-ETA bug), which is not
what this test measures.
Every run is appended to a ledger file outside Redis; each task id must appear exactly once.
The slow variant (``-m slow``) sends 5,000 tasks.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.cutover_apps import ledger
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One server for the module: the apps under test read its URL once, at import."""
    srv = RedisServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def env(server: RedisServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    import redis

    redis.Redis.from_url(server.url).flushall()
    values = {
        "CUT_REDIS": server.url,
        "CUT_LEDGER": str(tmp_path / "ledger"),
        "PYTHONPATH": str(ROOT),
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield {**os.environ, **values}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Procs:
    """Subprocesses this test started, stopped by their own pid."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, []  # type: ignore[var-annotated]

    def start(self, name: str, args: list[str], **env: str) -> subprocess.Popen[bytes]:
        out = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
        self.procs.append((name, proc, out))
        return proc

    def celery_worker(self) -> subprocess.Popen[bytes]:
        return self.start(
            "celery-worker",
            [str(BIN / "celery"), "-A", "tests.cutover_apps.celery_side", "worker", "--pool=solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        )  # fmt: skip

    def docket_worker(self, name: str, flag: bool, orphan_s: float) -> subprocess.Popen[bytes]:
        args = [str(BIN / "celery-docket"), "-A", "tests.cutover_apps.docket_side", "worker",
                "-P", "threads", "-c", "8", "-n", f"{name}@%h", "-l", "INFO"]  # fmt: skip
        age = {"CUT_ORPHAN_AGE": str(orphan_s)}
        if flag:
            return self.start(name, [*args, "--celery-intake"], **age)
        return self.start(name, args, CUT_INTAKE="1", **age)  # the setting, not the flag

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def close(self) -> None:
        for _name, proc, out in self.procs:
            self.stop(proc)
            out.close()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    p = Procs(env, tmp_path)
    try:
        yield p
    finally:
        p.close()


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def result_ids(res: Any) -> list[str]:
    """Every task id of a Celery result tree: a chain's parents, a chord's header."""
    out = []
    while res is not None:
        out.append(res.id)
        children = getattr(res, "results", None)
        if children is not None:  # a GroupResult: its members, not itself
            out.pop()
            out.extend(c.id for c in children)
        res = res.parent
    return out


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "celery-docket"), "-A", "tests.cutover_apps.docket_side", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def rolling_deploy(
    env: dict[str, str], procs: Procs, n: int, eta_s: float, orphan_s: float
) -> None:
    import redis
    from celery import chain, chord

    from tests.cutover_apps import celery_side as cs

    r = redis.Redis.from_url(env["CUT_REDIS"])
    path = env["CUT_LEDGER"]
    expected: list[str] = []
    countdowns, etas, size = max(n // 15, 4), max(n // 15, 4), max(n // 30, 5)
    plain = n - etas - 2 * countdowns - size - 7  # the rest: two 3-step chains, the chord body
    started = time.monotonic()

    # phase 1: only Celery runs; it reserves the ETA tasks and runs the rest
    celery_worker = procs.celery_worker()
    wait_for(lambda: "ready" in procs.log("celery-worker"), 60, "the Celery worker")
    eta = datetime.now(timezone.utc) + timedelta(seconds=eta_s)
    eta_ids = [cs.work.apply_async((i,), eta=eta).id for i in range(etas)]
    expected += eta_ids
    expected += [cs.work.apply_async((i,), countdown=1).id for i in range(countdowns)]
    expected += [cs.work.delay(i).id for i in range(plain // 2)]
    first_chain = chain(cs.add.s(1, 2), cs.add.s(3), cs.add.s(4)).apply_async()
    expected += result_ids(first_chain)
    wait_for(lambda: r.hlen("unacked") >= etas, 60, "Celery to reserve the ETA tasks")
    reserved_at = time.monotonic()

    # phase 2: our workers join (the intake on); both fleets take Celery's list
    procs.docket_worker("d1", flag=True, orphan_s=orphan_s)
    procs.docket_worker("d2", flag=False, orphan_s=orphan_s)
    wait_for(lambda: all("ready." in procs.log(n) for n in ("d1", "d2")), 60, "our workers")
    expected += [cs.work.delay(i).id for i in range(plain // 4)]

    def celery_idle() -> bool:
        before = len(ledger.read(path))
        time.sleep(0.6)
        return r.llen("celery") == 0 and len(ledger.read(path)) == before

    wait_for(celery_idle, 120, "the Celery worker to be idle")
    procs.stop(celery_worker, signal.SIGKILL)  # a crash: its reservations stay in unacked
    assert time.monotonic() - reserved_at < orphan_s, "killed too late: raise orphan_s"
    orphaned = r.hlen("unacked")
    assert orphaned == etas  # still reserved by the dead worker: taken once orphan_s passed

    # phase 3: Celery's producer keeps sending; only our workers run now
    expected += [cs.work.apply_async((i,), countdown=3).id for i in range(countdowns)]
    expected += [cs.work.delay(i).id for i in range(plain - plain // 2 - plain // 4)]
    last_chain = chain(cs.add.s(5, 5), cs.add.s(6), cs.add.s(7)).apply_async()
    expected += result_ids(last_chain)
    the_chord = chord([cs.add.s(i, i) for i in range(size)], cs.tsum.s()).apply_async()
    expected += result_ids(the_chord)
    sent = len(expected)

    expected_set = set(expected)
    assert len(expected_set) == sent
    wait_for(lambda: expected_set <= set(ledger.runs(path)), eta_s + 90, "every task to run", 0.5)
    took = time.monotonic() - started
    time.sleep(1.0)  # anything run twice would show up now
    runs = ledger.runs(path)
    doubled = {t: c for t, c in runs.items() if c > 1}
    extra = set(runs) - expected_set
    sides = {side for side, _t, _a in ledger.read(path)}
    print(f"\n{sent} tasks, {orphaned} orphaned reservations taken over, all ran in {took:.1f} s")
    assert not doubled, f"run more than once: {doubled}"
    assert not extra, f"unexpected runs: {extra}"
    assert sides == {"celery", "docket"}
    ran_by = {t: s for s, t, _a in ledger.read(path)}
    assert {ran_by[t] for t in eta_ids} == {"docket"}  # reserved by Celery, run by us
    runs_at = {t: at for _s, t, at in ledger.read(path)}
    assert min(runs_at[t] for t in eta_ids) >= eta.timestamp() - 0.05  # never early

    # results both ways: Celery's client reads ours, ours reads Celery's
    assert last_chain.get(timeout=10) == 23
    assert the_chord.get(timeout=10) == sum(2 * i for i in range(size))
    from tests.cutover_apps import docket_side as ds

    celery_ran = next(t for t in expected if ran_by[t] == "celery")
    assert ds.app.AsyncResult(celery_ran).get(timeout=10) is not None
    assert ds.app.AsyncResult(first_chain.id).get(timeout=10) == 10

    out = cli(env, "migrate", "--dry-run")
    assert "Dry run: 0 message(s) would move" in out, out
    assert r.hlen("unacked") == 0 and r.llen("celery") == 0
    for name in ("d1", "d2"):
        assert "Traceback" not in procs.log(name), procs.log(name)
    # Celery's results unsubscribe when collected: let them, while their Redis is up
    del first_chain, last_chain, the_chord
    gc.collect()


def test_rolling_deploy_from_celery(env: dict[str, str], procs: Procs) -> None:
    rolling_deploy(env, procs, 300, eta_s=25, orphan_s=12)


@pytest.mark.slow
def test_rolling_deploy_from_celery_5000(env: dict[str, str], procs: Procs) -> None:
    rolling_deploy(env, procs, 5000, eta_s=120, orphan_s=45)


def test_roll_back_to_celery(env: dict[str, str], procs: Procs) -> None:
    """Our ready and parked work goes back to Celery's lists; a Celery worker runs all of it."""
    import redis

    from celery_docket import chain
    from tests.cutover_apps import celery_side as cs
    from tests.cutover_apps import docket_side as ds

    r = redis.Redis.from_url(env["CUT_REDIS"])
    path = env["CUT_LEDGER"]
    ready = [ds.work.delay(i).id for i in range(120)]
    prio = [ds.work.apply_async((i,), priority=6).id for i in range(10)]
    start = time.time()
    parked = [ds.work.apply_async((i,), countdown=6).id for i in range(30)]
    the_chain = chain(ds.add.s(1, 1), ds.add.s(2), ds.add.s(3)).apply_async()
    expected = {*ready, *prio, *parked, *result_ids(the_chain)}
    k = ds.app.docket.keys("celery")
    assert r.xlen(k.stream) == 131 and r.zcard(k.due) == 30  # the chain's first step is ready

    out = cli(env, "migrate", "--to-celery", "--dry-run")
    assert "161 message(s) would go back" in out, out
    out = cli(env, "migrate", "--to-celery")
    assert "161 message(s) went back to Celery's lists (30 with an ETA)" in out, out
    assert r.xlen(k.stream) == 0 and r.zcard(k.due) == 0
    assert r.llen("celery") == 151 and r.llen("celery\x06\x166") == 10
    out = cli(env, "migrate", "--to-celery")  # twice: nothing more
    assert "0 message(s) went back" in out, out

    procs.celery_worker()
    wait_for(lambda: expected <= set(ledger.runs(path)), 60, "Celery to run what went back")
    time.sleep(1.0)
    runs = ledger.runs(path)
    assert {t: c for t, c in runs.items() if c != 1} == {}
    assert set(runs) == expected
    assert {side for side, _t, _a in ledger.read(path)} == {"celery"}
    at = {t: a for _s, t, a in ledger.read(path)}
    assert min(at[t] for t in parked) >= start + 6 - 0.05  # the countdown survived the trip
    # our client reads what Celery's worker stored, and Celery's client reads the same
    assert the_chain.get(timeout=10) == 7
    assert cs.app.AsyncResult(the_chain.id).get(timeout=10) == 7
    assert ds.app.AsyncResult(ready[0]).get(timeout=10) == 0
    assert "Dry run: 0 message(s) would move" in cli(env, "migrate", "--dry-run")
