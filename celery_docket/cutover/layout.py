"""Where a Celery deployment keeps its work in Redis (kombu's Redis transport), in one place.

Read so that the cutover can find messages a Celery producer sent and a Celery worker reserved;
nothing here writes. kombu keeps, per queue, a list named after the queue plus one list per
priority step (``<queue>\\x06\\x16<step>``, steps 0/3/6/9, lower number consumed first); a
reserved message sits in the hash ``unacked`` (delivery tag -> ``[message, exchange,
routing_key]``) and the sorted set ``unacked_index`` (delivery tag -> time it was reserved);
exchanges' bindings are sets ``_kombu.binding.<exchange>`` of ``routing_key SEP pattern SEP
queue``. ``global_keyprefix`` (a transport option) is put before every one of these names.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
DEFAULT_VISIBILITY_TIMEOUT = 3600.0


@dataclass(frozen=True)
class CeleryLayout:
    """Key names of one Celery deployment's kombu Redis transport."""

    global_keyprefix: str = ""
    priority_steps: tuple[int, ...] = PRIORITY_STEPS
    unacked_name: str = "unacked"
    unacked_index_name: str = "unacked_index"
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> CeleryLayout:
        """From ``broker_transport_options`` (the same dict the Celery app was given)."""
        o = dict(options or {})
        steps = tuple(int(s) for s in o.get("priority_steps") or PRIORITY_STEPS)
        return cls(
            global_keyprefix=str(o.get("global_keyprefix") or ""),
            priority_steps=steps,
            unacked_name=str(o.get("unacked_key") or "unacked"),
            unacked_index_name=str(o.get("unacked_index_key") or "unacked_index"),
            visibility_timeout=float(o.get("visibility_timeout") or DEFAULT_VISIBILITY_TIMEOUT),
        )

    def _k(self, name: str) -> str:
        return f"{self.global_keyprefix}{name}"

    def step(self, priority: Any) -> int:
        """The priority step a message of ``priority`` is listed under (kombu's rounding)."""
        try:
            value = max(0, min(int(priority), 9))
        except (TypeError, ValueError):
            value = 0
        return self.priority_steps[max(bisect(self.priority_steps, value) - 1, 0)]

    def queue_list(self, queue: str, step: int = 0) -> str:
        """The list holding ``queue``'s ready messages of one priority step."""
        return self._k(f"{queue}{SEP}{step}" if step else queue)

    def queue_lists(self, queue: str) -> list[str]:
        """Every list of ``queue``, in the order kombu consumes them (step 0 first)."""
        return [self.queue_list(queue, s) for s in self.priority_steps]

    @property
    def unacked(self) -> str:
        return self._k(self.unacked_name)

    @property
    def unacked_index(self) -> str:
        return self._k(self.unacked_index_name)

    def binding(self, exchange: str) -> str:
        return self._k(f"_kombu.binding.{exchange}")

    def result_key(self, task_id: str) -> str:
        return self._k(f"celery-task-meta-{task_id}")

    def chord_size_key(self, group_id: str) -> str:
        """Celery's Redis result backend: the chord's size, set when its header is sent."""
        return self._k(f"celery-taskset-meta-{group_id}.s")

    def chord_join_key(self, group_id: str) -> str:
        """Celery's Redis result backend: finished header parts (a sorted set or a list)."""
        return self._k(f"celery-taskset-meta-{group_id}.j")


def once_key(prefix: str, task_id: str, retries: int) -> str:
    """Our one key of the cutover: the token that lets (task id, retries) in at most once."""
    return f"{prefix}:cutover:once:{task_id}:{retries}"


def queues_of_binding(members: list[bytes], routing_key: str) -> list[str]:
    """Queues a direct exchange's bindings route ``routing_key`` to."""
    out = []
    for raw in members:
        parts = raw.decode("utf-8", "replace").split(SEP)
        if len(parts) == 3 and parts[0] == routing_key and parts[2]:
            out.append(parts[2])
    return out
