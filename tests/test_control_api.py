"""``celery_docket.control`` keeps every name it exported as a single module.

The module became a package (one module per concern); code that imported from it, the CLI,
the worker, the Prometheus exporter and users' scripts following docs/operations.md, must
keep working unchanged.
"""

from __future__ import annotations

import importlib

import celery_docket.control as control

FORMER_NAMES = (
    "CONTROL_COMMANDS",
    "INSPECT_COMMANDS",
    "REVOKES_MAX",
    "REVOKE_EXPIRES",
    "UNSUPPORTED_CONTROL",
    "UNSUPPORTED_INSPECT",
    "Control",
    "DeadEntry",
    "Inspect",
    "NodeView",
    "app_queues",
    "broker_info",
    "control_channel",
    "dead_entries",
    "known_queues",
    "live_nodes",
    "message_info",
    "parked",
    "purge_dead",
    "purge_queues",
    "queue_as_dict",
    "queue_overview",
    "read_heartbeats",
    "replay_dead",
    "report_text",
    "revoke_expires",
    "revoked_ids",
    "revoked_key",
    "revoked_signals_key",
    "signum_of",
    "static_key",
)


def test_every_former_name_is_still_exported() -> None:
    missing = [name for name in FORMER_NAMES if not hasattr(control, name)]
    assert missing == []
    assert set(FORMER_NAMES) <= set(control.__all__)
    assert all(hasattr(control, name) for name in control.__all__)


def test_celery_module_path_and_key_names_are_unchanged() -> None:
    app_control = importlib.import_module("celery_docket.app.control")
    assert app_control.Control is control.Control
    assert app_control.Inspect is control.Inspect
    assert control.revoked_key("cd") == "cd:revoked"
    assert control.revoked_signals_key("cd") == "cd:revoked:signals"
    assert control.control_channel("cd") == "cd:control"
    assert control.static_key("cd", "abc") == "cd:hbstatic:abc"


def test_dead_entry_keeps_its_fields_and_shapes() -> None:
    entry = control.DeadEntry("1-0", "q", "e1", "tasks.add", "boom", 2, False, 0.0, b"not json")
    assert entry.task_id == "e1"  # not a Celery message: the execution id
    assert entry.as_dict() == {
        "entry": "1-0",
        "queue": "q",
        "id": "e1",
        "execution_id": "e1",
        "name": "tasks.add",
        "reason": "boom",
        "attempt": 2,
        "dead_at": None,
    }
    assert entry == control.DeadEntry(
        "1-0", "q", "e1", "tasks.add", "boom", 2, False, 0.0, b"not json"
    )
