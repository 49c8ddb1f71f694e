"""Every Redis key name the facade uses, built in one place (the engine's are in
``engine/keys.py``).

Results and group results keep Celery's own layout (``celery-task-meta-<id>``,
``celery-taskset-meta-<id>``) so Celery clients and dashboards reading them keep working
during a migration; those names must never change. Control keys live under the app's engine
prefix. Chord bookkeeping keeps its historical ``celery-docket-chord-*`` names: renaming them
would strand the chords in flight during an upgrade.
"""

from __future__ import annotations

TASK_META_PREFIX = "celery-task-meta-"
"""Celery's result key prefix: ``celery-task-meta-<task id>`` holds the JSON meta."""

GROUP_META_PREFIX = "celery-taskset-meta-"
"""Celery's saved-group key prefix (``GroupResult.save``)."""

CHORD_UNLOCK_PREFIX = "chord-unlock-"
"""Celery's ``chord_keyprefix`` (named by its backends; no key of ours uses it)."""

CHORD_PREFIX = "celery-docket-chord-"
"""Hash of a chord's header outcomes, ``<group index>:<task id>`` -> meta."""
CHORD_SIZE_PREFIX = "celery-docket-chord-size-"
CHORD_EXTRA_PREFIX = "celery-docket-chord-extra-"
CHORD_FIRED_PREFIX = "celery-docket-chord-fired-"
CHORD_FAILED_PREFIX = "celery-docket-chord-failed-"


def result_key(task_id: str) -> str:
    """Where a task's result meta is stored (and the pub/sub channel told of it)."""
    return f"{TASK_META_PREFIX}{task_id}"


def revoked_key(prefix: str) -> str:
    """Sorted set: task id -> expiry of its revocation (epoch ms)."""
    return f"{prefix}:revoked"


def revoked_signals_key(prefix: str) -> str:
    """List of revoked executions removed from the engine before any worker saw them."""
    return f"{prefix}:revoked:signals"


def static_key(prefix: str, digest: str) -> str:
    """A worker's registered tasks and their attributes, stored once per content digest."""
    return f"{prefix}:hbstatic:{digest}"


def control_channel(prefix: str) -> str:
    """Pub/sub channel of control notices, which every worker subscribes to."""
    return f"{prefix}:control"


__all__ = [
    "CHORD_EXTRA_PREFIX",
    "CHORD_FAILED_PREFIX",
    "CHORD_FIRED_PREFIX",
    "CHORD_PREFIX",
    "CHORD_SIZE_PREFIX",
    "CHORD_UNLOCK_PREFIX",
    "GROUP_META_PREFIX",
    "TASK_META_PREFIX",
    "control_channel",
    "result_key",
    "revoked_key",
    "revoked_signals_key",
    "static_key",
]
