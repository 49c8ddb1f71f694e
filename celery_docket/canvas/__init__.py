"""Celery's canvas: signatures, chains, groups, chords, maps and chunks.

Every primitive is a dict in Celery's form, so it can be sent in a message and rebuilt on
the other side (``Signature.from_dict``) as the same kind.
"""

from __future__ import annotations

from .base import Signature, maybe_signature, regen, signature, subtask
from .chains import _chain, chain
from .extras import chunks, xmap, xstarmap
from .groups import chord, chord_size, group
from .stamping import StampingVisitor

_chord = chord

__all__ = [
    "Signature",
    "StampingVisitor",
    "_chain",
    "_chord",
    "chain",
    "chord",
    "chord_size",
    "chunks",
    "group",
    "maybe_signature",
    "regen",
    "signature",
    "subtask",
    "xmap",
    "xstarmap",
]
