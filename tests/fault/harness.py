"""Test-side helpers: spawn/kill worker processes, watch commits, read the ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from celery_docket.engine import Docket
from tests.fault.proc_worker import WORK, Ledger, register_probes

SCRIPT = str(Path(__file__).with_name("proc_worker.py"))
PREFORK_SCRIPT = str(Path(__file__).with_name("prefork_proc.py"))
ROOT = str(Path(__file__).resolve().parents[2])


def wait_until(
    pred: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``pred`` until truthy; bounded in time. Raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}")
        time.sleep(interval)


@dataclass
class WorkerProc:
    """One worker subprocess (its own process group); killed only by its own pid."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    killed_at: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> float:
        t = time.time()
        os.kill(self.proc.pid, sig)
        return t

    def kill9(self) -> float:
        self.killed_at = self.signal(signal.SIGKILL)
        self.proc.wait(10)
        return self.killed_at

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Cluster:
    """Worker processes of one test, plus the ledger directory they write."""

    url: str
    prefix: str
    ledger_dir: Path
    workers: list[WorkerProc] = field(default_factory=list)
    max_alive: int = 4

    def spawn(
        self,
        name: str,
        *extra: str,
        wait_ready: bool = True,
        env: dict[str, str] | None = None,
        **opts: Any,
    ) -> WorkerProc:
        """Start a worker; ``env`` adds to its environment (e.g. libfaketime's)."""
        alive = sum(1 for w in self.workers if w.alive())
        assert alive < self.max_alive, "at most 4 worker processes at a time"
        args = [sys.executable, SCRIPT, self.url, self.prefix, str(self.ledger_dir), name]
        for key, value in opts.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        args += list(extra)
        log_path = self.ledger_dir / f"stderr-{name}-{len(self.workers)}.txt"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=None if env is None else {**os.environ, **env},
            )
        wp = WorkerProc(name, proc, log_path)
        self.workers.append(wp)
        if wait_ready:
            self.wait_ready(wp)
        return wp

    def wait_ready(self, wp: WorkerProc, timeout: float = 20) -> None:
        def ready() -> bool:
            assert wp.alive(), f"worker {wp.name} died at start:\n{wp.log()}"
            return any(r[0] == "READY" and int(r[1]) == wp.pid for r in self.records())

        wait_until(ready, timeout, what=f"worker {wp.name} ready")

    def records(self) -> list[list[str]]:
        out: list[list[str]] = []
        for path in sorted(self.ledger_dir.glob("*.log")):
            lines = path.read_bytes().split(b"\n")
            for line in lines[:-1]:  # the last piece is empty or a torn line: skip it
                if line:
                    out.append(line.decode().split(" "))
        return out

    def stop_all(self, timeout: float = 20) -> dict[int, int | None]:
        """SIGTERM every live worker (by pid), wait, SIGKILL stragglers; return exit codes."""
        for w in self.workers:
            if w.alive():
                w.signal(signal.SIGTERM)
        codes: dict[int, int | None] = {}
        deadline = time.monotonic() + timeout
        for w in self.workers:
            try:
                codes[w.pid] = w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.proc.wait(10)
                codes[w.pid] = None
        return codes

    def cleanup(self) -> None:
        for w in self.workers:
            if w.alive():
                try:
                    os.kill(w.pid, signal.SIGCONT)
                    os.killpg(w.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                w.proc.wait(10)


class CommitWatcher:
    """Counts the engine's commits of results: COMPLETE publishes each result it writes.

    Writes ``END id pid t`` to the test's ledger for every commit it sees.
    """

    def __init__(self, docket: Docket, ledger: Ledger) -> None:
        self.docket = docket
        self.ledger = ledger
        self.prefix = docket.results.prefix
        self.commits: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CommitWatcher:
        self.thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            pubsub = self.docket.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(self.prefix + "*")
                pubsub.get_message(timeout=0.5)  # the psubscribe confirmation
                self._ready.set()
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=0.2)
                    if msg is None or msg.get("type") != "pmessage":
                        continue
                    eid = msg["channel"].decode()[len(self.prefix) :]
                    doc = json.loads(msg["data"])
                    ok = doc.get("ok") if isinstance(doc.get("ok"), dict) else {}
                    with self.lock:
                        self.commits[eid].append({"doc": doc, "t": time.time(), **ok})
                    self.ledger.write("END", eid, ok.get("pid", "?"), f"{time.time():.6f}")
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.errors.append(repr(exc))
                self._ready.set()
                self._stop.wait(0.2)
            finally:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001
                    pass

    def count(self, eid: str) -> int:
        with self.lock:
            return len(self.commits.get(eid, []))

    def all_committed(self, ids: Iterable[str]) -> bool:
        with self.lock:
            return all(self.commits.get(i) for i in ids)


class Producer:
    """Adds probe tasks and writes ``ENQ id t`` only after ``add`` returned."""

    def __init__(self, docket: Docket, ledger: Ledger) -> None:
        self.docket = docket
        self.ledger = ledger
        self.ids: list[str] = []

    def add(self, ms: int = 0, *, when: Any = None, key: str | None = None, **kw: Any) -> Any:
        e = self.docket.add(WORK, when=when, key=key)(ms, **kw)
        self.ledger.write("ENQ", e.id, f"{time.time():.6f}")
        self.ids.append(e.id)
        return e


def test_docket(url: str, prefix: str) -> Docket:
    d = Docket(url, prefix=prefix)
    register_probes(d)
    return d


test_docket.__test__ = False  # type: ignore[attr-defined]


def starts_by_id(records: list[list[str]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r[0] == "START":
            out[r[1]].append(
                {"dc": int(r[2]), "pid": int(r[3]), "t": float(r[4]), "mid": r[5], "tok": r[6]}
            )
    for runs in out.values():
        runs.sort(key=lambda s: s["t"])
    return out


def rets_by_token(records: list[list[str]]) -> dict[str, dict[str, Any]]:
    return {
        r[4]: {"id": r[1], "pid": int(r[2]), "t": float(r[3])} for r in records if r[0] == "RET"
    }


def enq_ids(records: list[list[str]]) -> list[str]:
    return [r[1] for r in records if r[0] == "ENQ"]


def committed_results(docket: Docket, ids: list[str]) -> dict[str, dict[str, Any] | None]:
    """The committed result per id, read from Redis (None: nothing committed)."""
    out: dict[str, dict[str, Any] | None] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for eid, raw in zip(chunk, docket.results.get_many(chunk), strict=True):
            out[eid] = None if raw is None else json.loads(raw)
    return out


def pending_count(docket: Docket, queue: str = "default") -> int:
    try:
        info = docket.redis.xpending(docket.keys(queue).stream, "workers")
    except redis.ResponseError:
        return 0
    return int(info["pending"])


def dead_entries(docket: Docket, queue: str = "default") -> list[dict[str, str]]:
    out = []
    for mid, fields in docket.redis.xrange(docket.keys(queue).dead):
        entry = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
        entry["_id"] = mid.decode()
        out.append(entry)
    return out


class Pools:
    """Prefork supervisors started by this test, each in its own session; ended by pgid."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        self, name: str, processes: int, lease: float, time_limit: float = 30.0
    ) -> subprocess.Popen[bytes]:
        c = self.cluster
        args = [sys.executable, PREFORK_SCRIPT, c.url, c.prefix, str(c.ledger_dir), name]
        args += ["--processes", str(processes), "--lease", str(lease)]
        args += ["--time-limit", str(time_limit)]
        log = open(c.ledger_dir / f"stderr-{name}-{len(self.procs)}.txt", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()  # the supervisor writes through its own copy
        self.procs.append(proc)
        wait_until(lambda: len(self.children(name, proc.pid)) >= processes, 20, what="ready")
        return proc

    def children(self, name: str, sup: int) -> list[int]:
        """Pids of the children of supervisor ``sup`` that announced READY."""
        mine = {int(r[1]) for r in self.cluster.records() if r[0] == "READY"}
        try:
            with open(f"/proc/{sup}/task/{sup}/children") as f:
                kids = {int(p) for p in f.read().split()}
        except FileNotFoundError:
            kids = set()
        return sorted(mine & kids)

    def cleanup(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
