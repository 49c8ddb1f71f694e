"""``app.control``: revoke, inspect, purge and the other remote-control calls, from Redis.

Celery broadcasts each command and waits for the workers' replies, so an answer takes the
whole timeout and misses busy workers. Here every worker keeps its state in Redis (its
heartbeat, refreshed every third of a lease and soon after each task starts or ends), the
queues are engine structures, and revocations live in a sorted set. Inspection reads those
and answers at once, in Celery's reply shapes keyed by node name.

One module per concern: ``client`` (``Control``), ``inspect`` (``Inspect``), ``nodes``
(workers from their heartbeats), ``shapes`` (Celery's reply shapes), ``revoke``, ``queues``
(purge, counts, parked tasks), ``dead`` (dead letters) and ``report``. They read and change
the engine only through ``engine/snapshot.py`` and ``engine/admin.py``; the facade's own keys
are in ``celery_docket/keys.py``. Every public name is importable from here.
"""

from __future__ import annotations

from ..keys import control_channel, revoked_key, revoked_signals_key, static_key
from .client import CONTROL_COMMANDS, UNSUPPORTED_CONTROL, Control
from .dead import DeadEntry, dead_entries, purge_dead, replay_dead
from .inspect import INSPECT_COMMANDS, UNSUPPORTED_INSPECT, Inspect
from .nodes import NodeView, live_nodes, read_heartbeats
from .queues import app_queues, known_queues, parked, purge_queues, queue_overview
from .report import report_text
from .revoke import REVOKE_EXPIRES, REVOKES_MAX, revoke_expires, revoked_ids, signum_of
from .shapes import broker_info, jsonable, message_info, queue_as_dict

__all__ = [
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
    "jsonable",
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
]
