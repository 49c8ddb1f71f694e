"""celery_docket's Redis-streams engine: knows nothing of Celery.

Add a call now, at a time, or under an idempotency key; perpetual tasks; a worker with
leases, fencing, a dead-letter stream and no fixed sleeps. Runs on a real Redis or on
``memory://`` (an in-process fakeredis) with nothing installed.

Where things live, in dependency order (nothing imports upwards; tests/test_engine_imports.py):
``messages`` (what travels: Call, Delivery, Outcome), ``keys``, ``scripts`` (the Lua) with
``entries`` (a commit entry, typed once for both sides), ``lua`` (calling them), ``hooks``
(the lifecycle seam), ``client`` (the producer), ``worker/`` (one module per loop),
``prefork`` (the supervisor), ``docket`` (the native decorator API on top of them all).
"""

from .client import Client
from .clock import When
from .connection import Backend, connect, reset_memory
from .docket import Docket
from .errors import (
    BrokerFull,
    BrokerUnavailable,
    ContentRefused,
    EngineError,
    PayloadTooLarge,
    ResultTimeout,
    Undeliverable,
)
from .hooks import Hook, Hooks
from .messages import DEFAULT_QUEUE, Call, Delivery, Execution, Outcome, ResultWrite
from .native import Perpetual, TaskFailed
from .worker import Handler, PerpetualSpec, Worker, WorkerSettings

__all__ = [
    "DEFAULT_QUEUE",
    "Backend",
    "BrokerFull",
    "BrokerUnavailable",
    "Call",
    "Client",
    "ContentRefused",
    "Delivery",
    "Docket",
    "EngineError",
    "Execution",
    "Handler",
    "Hook",
    "Hooks",
    "Outcome",
    "PayloadTooLarge",
    "Perpetual",
    "PerpetualSpec",
    "ResultTimeout",
    "ResultWrite",
    "TaskFailed",
    "Undeliverable",
    "When",
    "Worker",
    "WorkerSettings",
    "connect",
    "reset_memory",
]
