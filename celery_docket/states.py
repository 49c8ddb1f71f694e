"""Task states, with the same names, values, sets and ordering as ``celery.states``.

States are plain strings so they can be stored and compared with results written by
Celery. :class:`state` adds ordering by *precedence*: a state that is "further along"
(e.g. SUCCESS) compares greater than an earlier one (e.g. PENDING), which lets code
keep the most advanced state when events arrive out of order.
"""

from __future__ import annotations

__all__ = (
    "PENDING",
    "RECEIVED",
    "STARTED",
    "SUCCESS",
    "FAILURE",
    "REVOKED",
    "REJECTED",
    "RETRY",
    "IGNORED",
    "READY_STATES",
    "UNREADY_STATES",
    "EXCEPTION_STATES",
    "PROPAGATE_STATES",
    "ALL_STATES",
    "precedence",
    "state",
)

#: Task is waiting for execution or unknown (any unknown id is PENDING).
PENDING = "PENDING"
#: Task was received by a worker (only used in events).
RECEIVED = "RECEIVED"
#: Task was started by a worker (needs ``task_track_started``).
STARTED = "STARTED"
#: Task succeeded.
SUCCESS = "SUCCESS"
#: Task failed.
FAILURE = "FAILURE"
#: Task was revoked.
REVOKED = "REVOKED"
#: Task was rejected (only used in events).
REJECTED = "REJECTED"
#: Task is waiting for a retry.
RETRY = "RETRY"
#: Task outcome was deliberately not recorded.
IGNORED = "IGNORED"

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, REJECTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
# As in Celery, REJECTED and IGNORED are not part of ALL_STATES.
ALL_STATES = frozenset({PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED})

#: Most advanced first; ``None`` stands for any state not listed here.
PRECEDENCE = [SUCCESS, FAILURE, None, REVOKED, STARTED, RECEIVED, REJECTED, RETRY, PENDING]
PRECEDENCE_LOOKUP = {name: index for index, name in enumerate(PRECEDENCE)}
NONE_PRECEDENCE = PRECEDENCE_LOOKUP[None]


def precedence(state: str | None) -> int:
    """Index of ``state`` in :data:`PRECEDENCE`; lower means more advanced.

    Unknown (custom) states rank where ``None`` does, between FAILURE and REVOKED.
    """
    try:
        return PRECEDENCE_LOOKUP[state]
    except KeyError:
        return NONE_PRECEDENCE


class state(str):  # noqa: N801 - Celery's name
    """A state name that orders by precedence instead of alphabetically.

    ``state(SUCCESS) > state(PENDING)`` is true; two unknown states are neither
    greater nor less than each other (both ``<=`` and ``>=`` hold), as in Celery.
    Equality and hashing stay those of ``str``.
    """

    def __gt__(self, other: object) -> bool:
        return precedence(self) < precedence(other)  # type: ignore[arg-type]

    def __ge__(self, other: object) -> bool:
        return precedence(self) <= precedence(other)  # type: ignore[arg-type]

    def __lt__(self, other: object) -> bool:
        return precedence(self) > precedence(other)  # type: ignore[arg-type]

    def __le__(self, other: object) -> bool:
        return precedence(self) >= precedence(other)  # type: ignore[arg-type]
