"""Every Redis key name the engine uses, built in one place.

All keys of one queue share the hash tag ``{<prefix>:<queue>}`` so each Lua script touches
a single Cluster slot. Names never collide with Celery's own (``celery``, ``_kombu.*``,
``unacked``) because Flower and exporters run ``LLEN`` on those.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "workers"
"""The one consumer group every worker of every queue joins."""


@dataclass(frozen=True)
class QueueKeys:
    """Key names of one queue."""

    prefix: str
    queue: str

    @property
    def tag(self) -> str:
        return "{" + f"{self.prefix}:{self.queue}" + "}"

    @property
    def stream(self) -> str:
        """Ready work, consumed through the ``workers`` group."""
        return f"{self.tag}:stream"

    @property
    def due(self) -> str:
        """Sorted set of parked (future) execution ids, scored by due time in ms."""
        return f"{self.tag}:due"

    @property
    def dead(self) -> str:
        """Dead-letter stream: messages that could not or must not run, with a reason."""
        return f"{self.tag}:dead"

    @property
    def run_prefix(self) -> str:
        return f"{self.tag}:run:"

    def run(self, execution_id: str) -> str:
        """Execution record: keyed executions while live, any execution while parked."""
        return f"{self.run_prefix}{execution_id}"

    @property
    def wake(self) -> str:
        """Pub/sub channel told when a new earliest due time is parked."""
        return f"{self.tag}:wake"

    def once(self, token: str) -> str:
        """A send-once token's key on Redis Cluster: under the queue's tag, so ``ADD`` sets it
        in the queue's slot (a single server uses the token itself as the key)."""
        return f"{self.tag}:once:{token}"

    @property
    def outbox(self) -> str:
        """Cluster only: results committed with their acks, not yet copied to their own key
        (another slot). Hash ``v:<result key>`` -> value, ``m:<result key>`` -> metadata."""
        return f"{self.tag}:outbox"

    @property
    def fates(self) -> str:
        """Hash msgid -> reason, written by a supervisor that killed the message's runner."""
        return f"{self.tag}:fates"


def heartbeat_key(prefix: str, consumer: str) -> str:
    """A live worker's heartbeat, expiring when the worker stops renewing it."""
    return f"{prefix}:hb:{consumer}"


def workers_key(prefix: str) -> str:
    """Sorted set of consumer names scored by their last heartbeat (ms): an index of the
    heartbeat keys, so inspection reads them without scanning the keyspace."""
    return f"{prefix}:workers"


def result_key(result_prefix: str, execution_id: str) -> str:
    """An execution's stored result (and the pub/sub channel told when it is written).

    ``result_prefix`` is whole: the facade passes Celery's ``celery-task-meta-``, the native
    API ``<prefix>:result:``.
    """
    return f"{result_prefix}{execution_id}"


def queues_key(prefix: str) -> str:
    """Set of every queue name that ever received work (for inspection and purge)."""
    return f"{prefix}:queues"
