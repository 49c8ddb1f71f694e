"""Stamping: ``sig.stamp(visitor, **headers)`` puts named values on every task of a canvas.

A stamp is an option of the signature whose name is listed in its ``stamped_headers``
option; ``send_task`` turns them into the message headers ``stamps``/``stamped_headers``
(never properties), and the worker's request shows them as ``request.stamps``. A visitor
(``StampingVisitor``) is asked for stamps at each node it walks: ``on_signature`` for every
task, ``on_group_start``/``on_chain_start``/``on_chord_header_start`` for the containers,
``on_chord_body`` for a chord's body, ``on_callback``/``on_errback`` for links. A container's
stamps go down to everything inside it; links are stamped with the visitor's and the passed
stamps only, not with those of the signature they hang on.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any

from .base import Signature, as_list, maybe_signature

STAMPED = "stamped_headers"


class StampingVisitor(ABC):
    """Subclass it and return, from each ``on_*`` method, the stamps to add there."""

    def on_group_start(self, group: Any, **headers: Any) -> dict[str, Any]:
        return {}

    def on_group_end(self, group: Any, **headers: Any) -> None:
        return None

    def on_chain_start(self, chain: Any, **headers: Any) -> dict[str, Any]:
        return {}

    def on_chain_end(self, chain: Any, **headers: Any) -> None:
        return None

    @abstractmethod
    def on_signature(self, sig: Any, **headers: Any) -> dict[str, Any]:
        """The stamps of one task signature."""

    def on_chord_header_start(self, sig: Any, **header: Any) -> dict[str, Any]:
        if not isinstance(sig.tasks, list):
            return {}
        return self.on_group_start(sig.tasks, **header) or {}

    def on_chord_header_end(self, sig: Any, **header: Any) -> None:
        self.on_group_end(sig.tasks, **header)

    def on_chord_body(self, sig: Any, **header: Any) -> dict[str, Any]:
        return {}

    def on_callback(self, callback: Any, **header: Any) -> dict[str, Any]:
        return {}

    def on_errback(self, errback: Any, **header: Any) -> dict[str, Any]:
        return {}


def _combine(into: dict[str, Any], extra: dict[str, Any], append: bool) -> None:
    """Add ``extra``'s stamps to ``into``: a stamp present in both becomes a list of both
    values with ``append``, else the value of ``extra``."""
    for key, value in extra.items():
        if key == STAMPED:
            continue
        if append and key in into:
            old = into[key]
            merged = list(old) if isinstance(old, list | tuple) else [old]
            merged.extend(value if isinstance(value, list | tuple) else [value])
            into[key] = merged
        else:
            into[key] = value
    names = list(into.get(STAMPED) or [])
    for key in [*(extra.get(STAMPED) or ()), *(k for k in extra if k != STAMPED)]:
        if key not in names:
            names.append(key)
    into[STAMPED] = names


def collect(
    sig: Signature,
    visitor_stamps: dict[str, Any] | None,
    append: bool,
    own: bool,
    headers: dict[str, Any],
) -> dict[str, Any]:
    """The stamps for ``sig``: the passed ``headers``, then the visitor's, then (``own``)
    the ones ``sig`` already carries."""
    out: dict[str, Any] = {k: v for k, v in headers.items() if k != STAMPED}
    out[STAMPED] = list(headers.get(STAMPED) or [k for k in headers if k != STAMPED])
    if visitor_stamps:
        _combine(out, dict(visitor_stamps), append)
    if own:
        names = as_list(sig.options.get(STAMPED))
        mine = {k: sig.options[k] for k in names if k in sig.options}
        if append:
            _combine(out, mine, append)
        else:  # restamping replaces an old value, keeps stamps it does not name
            for key, value in mine.items():
                out.setdefault(key, value)
            _combine(out, {STAMPED: names}, append)
    return out


def stamp_links(sig: Signature, visitor: Any, append: bool, headers: dict[str, Any]) -> None:
    """Stamp the callbacks and errbacks of ``sig`` (dict links become signatures)."""
    for option, hook in (("link", "on_callback"), ("link_error", "on_errback")):
        links = as_list(sig.options.get(option))
        if not links:
            continue
        stamped = []
        for link in links:
            link = maybe_signature(link, app=sig._app)
            if not isinstance(link, Signature):
                stamped.append(link)
                continue
            found = getattr(visitor, hook)(link, **headers) or {} if visitor else None
            stamps = collect(link, found, append, False, copy.deepcopy(headers))
            stamp(link, visitor, append, stamps)
            stamped.append(link)
        sig.options[option] = stamped if isinstance(sig.options[option], list) else stamped[0]


def stamp(sig: Signature, visitor: Any, append: bool, headers: dict[str, Any]) -> None:
    """Walk ``sig`` (a task, chain, group or chord) and stamp every task in it."""
    from .chains import _chain
    from .groups import chord, group

    if isinstance(sig, chord):
        found = visitor.on_chord_header_start(sig, **headers) or {} if visitor else None
        stamps = collect(sig, found, append, True, headers)
        stamp_links(sig, visitor, append, stamps)
        for task in sig.tasks:
            task.stamp(visitor, append, **copy.deepcopy(stamps))
        if visitor is not None:
            visitor.on_chord_header_end(sig, **stamps)
        if sig.body is not None:
            found = visitor.on_chord_body(sig, **stamps) or {} if visitor else None
            sig.body.stamp(visitor, append, **collect(sig, found, append, True, stamps))
        return
    if isinstance(sig, group | _chain):
        kind = "group" if isinstance(sig, group) else "chain"
        found = getattr(visitor, f"on_{kind}_start")(sig, **headers) or {} if visitor else None
        stamps = collect(sig, found, append, True, headers)
        stamp_links(sig, visitor, append, stamps)
        for task in sig.tasks:
            maybe_signature(task, app=sig._app).stamp(visitor, append, **copy.deepcopy(stamps))
        if visitor is not None:
            getattr(visitor, f"on_{kind}_end")(sig, **stamps)
        return
    stamp_links(sig, visitor, append, headers)
    found = visitor.on_signature(sig, **headers) or {} if visitor else None
    sig.set(**collect(sig, found, append, True, headers))


def message_stamps(options: dict[str, Any]) -> tuple[list[str] | None, dict[str, Any]]:
    """``(stamped_headers, stamps)`` for a message from a signature's options; the stamps
    are taken out of ``options`` so they travel as headers only."""
    names = as_list(options.pop(STAMPED, None))
    stamps = {name: options.pop(name, None) for name in names}
    return (names or None), stamps
