"""What a batched commit sends per entry, described once for the Python and the Lua side.

``COMPLETE`` and ``ACK_FAST`` (``scripts.py``) take a few leading arguments, then a run of
values per entry. The run is a ``NamedTuple`` here, built from a delivery and its outcome,
and the script's Lua reads it through a prologue generated from the same description
(``Layout.unpack``): adding, removing or reordering a field changes both sides at once, and
``tests/test_engine_scripts.py`` runs each script against a real redis-server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .messages import Delivery, Outcome


class CommitEntry(NamedTuple):
    """One outcome for ``COMPLETE``: ack, run again, or dead-letter, fenced or not."""

    message_id: str
    execution_id: str
    keyed: str
    """'1' for a keyed execution (its record's generation is checked), else ''."""
    generation: str
    action: str
    """ack | again | dead"""
    when_ms: int | str
    """When an ``again`` runs ('' : now)."""
    body: bytes
    attempt: int
    function: str
    reason: str
    """Why a ``dead`` entry was dead-lettered."""
    result_key: str
    """'' : no result write."""
    result_value: bytes
    result_ttl_ms: int
    """0: no expiry."""
    fence: str
    """'1': commit only while the entry is pending under this consumer (lease not lost)."""

    @classmethod
    def of(cls, d: Delivery, o: Outcome, *, fence: bool) -> CommitEntry:
        r = o.result
        return cls(
            d.message_id,
            d.execution_id,
            "1" if d.keyed else "",
            d.generation,
            o.action,
            "" if o.when_ms is None else int(o.when_ms),
            d.body if o.body is None else o.body,
            d.attempt if o.attempt is None else o.attempt,
            d.function,
            o.reason,
            "" if r is None else r.key,
            b"" if r is None else r.value,
            0 if r is None else max(0, int(r.ttl_ms)),
            "1" if fence else "",
        )


class FastAck(NamedTuple):
    """One plain ack for ``ACK_FAST``, with the result written in the same step."""

    message_id: str
    result_key: str
    result_value: bytes
    result_ttl_ms: int

    @classmethod
    def of(cls, d: Delivery, o: Outcome) -> FastAck:
        r = o.result
        if r is None:
            return cls(d.message_id, "", b"", 0)
        return cls(d.message_id, r.key, r.value, max(0, int(r.ttl_ms)))


@dataclass(frozen=True)
class Layout:
    """The Lua locals a script reads one entry into, in the entry tuple's field order."""

    fields: tuple[str, ...]
    lua: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.fields) != len(self.lua):
            raise ValueError(f"layout of {self.fields} names {len(self.lua)} Lua locals")

    @property
    def stride(self) -> int:
        return len(self.fields)

    def unpack(self, cursor: str = "j") -> str:
        """Lua: loop over the entries from ARGV[cursor] on, each read into its locals."""
        values = ", ".join(
            f"ARGV[{cursor}]" if i == 0 else f"ARGV[{cursor}+{i}]" for i in range(self.stride)
        )
        return (
            f"while {cursor} + {self.stride - 1} <= #ARGV do\n"
            f"  local {', '.join(self.lua)} = {values}\n"
            f"  {cursor} = {cursor} + {self.stride}\n"
        )


COMMIT_LAYOUT = Layout(
    CommitEntry._fields,
    (
        "mid",
        "id",
        "k",
        "g",
        "action",
        "w",
        "b",
        "a",
        "n",
        "reason",
        "rkey",
        "rval",
        "rttl",
        "fence",
    ),
)
FAST_ACK_LAYOUT = Layout(FastAck._fields, ("mid", "rkey", "rval", "rttl"))

__all__ = ["COMMIT_LAYOUT", "FAST_ACK_LAYOUT", "CommitEntry", "FastAck", "Layout"]
