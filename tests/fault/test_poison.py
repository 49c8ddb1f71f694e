"""Poison, unknown-task and untrusted-pickle messages put raw into the stream."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from celery_docket.engine import Docket
from celery_docket.engine.native import encode_call
from tests.fault.harness import (
    Cluster,
    CommitWatcher,
    Producer,
    committed_results,
    dead_entries,
    pending_count,
    starts_by_id,
    wait_until,
)
from tests.fault.proc_worker import WORK

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(90)]

GOOD = encode_call((5,), {}, "json")

# (label, fields, words expected in the dead-letter reason)
BAD: list[tuple[str, dict[str, bytes | str], tuple[str, ...]]] = [
    ("no id", {"n": WORK, "b": GOOD}, ("malformed",)),
    ("no name", {"i": "bad-no-name", "b": GOOD}, ("malformed",)),
    ("no fields we know", {"x": "y"}, ("malformed",)),
    ("bad attempt", {"i": "bad-attempt", "n": WORK, "b": GOOD, "a": "NaN"}, ("malformed",)),
    (
        "unknown task",
        {"i": "bad-unknown", "n": "nobody.registered", "b": GOOD},
        ("unknown function",),
    ),
    (
        "args do not bind",
        {"i": "bad-args", "n": WORK, "b": encode_call((1, 2, 3, 4), {}, "json")},
        ("do not fit",),
    ),
    (
        "kwarg does not bind",
        {"i": "bad-kwarg", "n": WORK, "b": encode_call((), {"nope": 1}, "json")},
        ("do not fit",),
    ),
    (
        "body not [args, kwargs]",
        {"i": "bad-shape", "n": WORK, "b": b'json:{"a": 1}'},
        ("args, kwargs",),
    ),
    ("corrupt json", {"i": "bad-json", "n": WORK, "b": b"json:[[1"}, ("cannot decode",)),
    ("no content type", {"i": "bad-ctype", "n": WORK, "b": b"plain"}, ("content-type",)),
    ("no body", {"i": "bad-nobody", "n": WORK}, ("content-type",)),
    ("unknown content type", {"i": "bad-yaml", "n": WORK, "b": b"yaml:[]"}, ("not accepted",)),
]


def test_poison_messages_are_dead_lettered_and_good_ones_run(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher
) -> None:
    """Bad entries mixed into a batch of good ones: each bad one is dead-lettered with a
    reason, every good one commits once, and the worker process never restarts."""
    w = cluster.spawn("p0", pool="threads", concurrency=4, lease=2)
    stream = docket.keys("default").stream
    bad_mids: dict[str, tuple[str, tuple[str, ...]]] = {}
    for round_ in range(3):
        for j, (label, fields, words) in enumerate(BAD):
            for _ in range(3):
                producer.add(10)
            f = dict(fields)
            if "i" in f:
                f["i"] = f"{f['i']}-{round_}-{j}"
            bad_mids[docket.redis.xadd(stream, f).decode()] = (label, words)
    ids = list(producer.ids)
    wait_until(lambda: watcher.all_committed(ids), 30, 0.1, "good ones committed")
    wait_until(lambda: len(dead_entries(docket)) >= len(bad_mids), 10, what="dead letters")
    wait_until(lambda: pending_count(docket) == 0, 5, what="empty PEL")
    # the same process is still serving: one more good task runs on it
    last = producer.add(0)
    assert docket.result(last.id, timeout=10)["pid"] == w.pid
    assert w.alive()

    dead = {e["m"]: e for e in dead_entries(docket)}
    assert set(dead) == set(bad_mids), set(dead) ^ set(bad_mids)
    for mid, (label, words) in bad_mids.items():
        reason = dead[mid]["r"]
        assert reason, f"{label}: no reason"
        assert all(word in reason for word in words), f"{label}: {reason!r}"
        assert dead[mid]["q"] == "default"
    results = committed_results(docket, ids)
    assert all(r is not None and r["ok"]["pid"] == w.pid for r in results.values())
    assert all(watcher.count(i) == 1 for i in ids)
    starts = starts_by_id(cluster.records())
    assert all(len(starts[i]) == 1 for i in ids)
    assert not any(i.startswith("bad-") for i in starts), "a bad message ran"
    assert docket.redis.xlen(stream) == 0
    assert "Traceback" not in w.log()
    assert cluster.stop_all() == {w.pid: 0}


@pytest.mark.parametrize("field", ["n", "i", "b"])
def test_non_utf8_field_is_dead_lettered_without_killing_the_worker(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher, field: str
) -> None:
    """An entry whose name/id is not UTF-8 (or a malformed entry with a binary body, such as
    a pickle) is poison like any other: dead-lettered, and the worker keeps serving."""
    w = cluster.spawn("u0", pool="threads", concurrency=2, lease=1)
    stream = docket.keys("default").stream
    fields: dict[str, bytes | str] = {"i": "bad-utf8", "n": WORK, "b": GOOD}
    if field == "b":
        del fields["i"]  # malformed, and its body is binary
        fields["b"] = b"pickle:\x80\x04\x95\xff"
    else:
        fields[field] = b"\xff\xfe-not-utf8"
    mid = docket.redis.xadd(stream, fields).decode()
    after = producer.add(10)
    wait_until(lambda: not w.alive() or watcher.count(after.id), 8, what="good task or death")
    assert w.alive(), f"worker exited with {w.proc.returncode}:\n{w.log()[-800:]}"
    assert docket.result(after.id, timeout=1)["pid"] == w.pid
    wait_until(lambda: any(e["m"] == mid for e in dead_entries(docket)), 5, what="dead letter")


class _Evil:
    """Unpickling this creates ``path`` (a stand-in for arbitrary code execution)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_untrusted_pickle_is_never_unpickled(
    cluster: Cluster, docket: Docket, producer: Producer, watcher: CommitWatcher, tmp_path: Path
) -> None:
    """A crafted ``pickle:`` body for a JSON-only worker is refused unread and dead-lettered."""
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_Evil(str(control))))  # the payload does work when unpickled
    assert control.exists()

    marker = tmp_path / "pwned-marker"
    w = cluster.spawn("j0", pool="threads", concurrency=2, lease=2)
    stream = docket.keys("default").stream
    mids = {}
    for label, name in [("registered", WORK), ("unknown", "nobody.registered")]:
        for payload in (pickle.dumps(_Evil(str(marker))), pickle.dumps(_Evil(str(marker)), 0)):
            fields = {"i": f"evil-{label}-{len(mids)}", "n": name, "b": b"pickle:" + payload}
            mids[docket.redis.xadd(stream, fields).decode()] = label
    good = producer.add(5)
    assert docket.result(good.id, timeout=10)["pid"] == w.pid
    wait_until(lambda: len(dead_entries(docket)) == len(mids), 5, what="dead letters")
    time.sleep(0.2)
    assert not marker.exists(), "the worker unpickled an untrusted body"
    assert not os.path.exists(str(marker))
    dead = {e["m"]: e for e in dead_entries(docket)}
    assert set(dead) == set(mids)
    for mid, label in mids.items():
        expected = "not accepted" if label == "registered" else "unknown function"
        assert expected in dead[mid]["r"], dead[mid]
    assert pending_count(docket) == 0
    assert w.alive()
    assert cluster.stop_all() == {w.pid: 0}
