"""One pathological record (a deeply nested JSON body) must never hide the others from the
tools that list them: ``dead list``, inspect and revoke share one message decoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from celery_docket import Celery
from celery_docket.control import message_info
from celery_docket.protocol import build_task_message

pytestmark = [pytest.mark.fault, pytest.mark.redis, pytest.mark.timeout(60)]

ROOT = str(Path(__file__).resolve().parents[2])


def _nested_body(task_id: str, depth: int = 100_000) -> bytes:
    """A well-formed envelope whose body nests ``depth`` lists (a RecursionError bomb)."""
    m = build_task_message("fault.body", [[]], {}, task_id=task_id)
    env = json.loads(m.encode())
    env["body"] = "[" * depth + "]" * depth
    env["body-encoding"] = "utf-8"
    return json.dumps(env).encode()


def test_dead_list_shows_every_entry_despite_a_deeply_nested_one(
    redis_server_url: str, prefix: str, tmp_path: Path
) -> None:
    app = Celery("br", broker=redis_server_url, set_as_current=False)
    app.conf.docket_key_prefix = prefix
    dead = app.docket.keys("celery").dead
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    for tid, body in [
        (good, build_task_message("fault.body", [[1]], {}, task_id=good).encode()),
        (bad, _nested_body(bad)),
    ]:
        app.docket.redis.xadd(
            dead, {"i": tid, "n": "fault.body", "b": body, "a": "1", "q": "celery", "r": "x"}
        )
    app.docket.redis.sadd(f"{prefix}:queues", "celery")
    env = {
        **os.environ,
        "CD_FAULT_BROKER": redis_server_url,
        "CD_FAULT_PREFIX": prefix,
        "CD_FAULT_LEDGER": str(tmp_path / "ledger.txt"),
        "PYTHONPATH": ROOT,
    }
    out = subprocess.run(
        [sys.executable, "-m", "celery_docket.cli.main", "-A", "tests.fault.celery_app"]
        + ["dead", "list", "-j", "-Q", "celery"],
        env=env,
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr.decode()[-1500:]
    ids = {d["id"] for d in json.loads(out.stdout)}
    assert ids == {good, bad}, ids
    # the decoder inspect (reserved/scheduled) and revoke use does not raise either
    info = message_info(app, _nested_body(bad), "celery", "")
    assert info is None or info["id"] == bad
    app.close()
