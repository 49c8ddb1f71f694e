"""``repr`` bounded in depth and length, never raising (``celery.utils.saferepr``).

Used for the ``argsrepr``/``kwargsrepr`` headers of task messages and for exception
arguments a serializer cannot take: huge or broken arguments stay cheap and harmless.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["saferepr"]


def _repr_parts(obj: Any, levels: int, seen: set[int]) -> Iterator[str]:
    containers = {
        list: ("[", "]"),
        tuple: ("(", ")"),
        set: ("{", "}"),
        frozenset: ("frozenset({", "})"),
        dict: ("{", "}"),
    }
    kind = next((t for t in containers if type(obj) is t), None)
    if kind is None:
        try:
            yield repr(obj)
        except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not stop the publish
            yield f"<Unrepresentable {type(obj).__name__}: {exc!r}>"
        return
    open_, close = containers[kind]
    if not obj:
        yield {set: "set()", frozenset: "frozenset()"}.get(kind, open_ + close)
        return
    if levels <= 0 or id(obj) in seen:
        yield f"{open_}...{close}"
        return
    seen = seen | {id(obj)}
    yield open_
    items = obj.items() if kind is dict else ((None, v) for v in obj)
    for index, (key, value) in enumerate(items):
        if index:
            yield ", "
        if kind is dict:
            yield from _repr_parts(key, levels - 1, seen)
            yield ": "
        yield from _repr_parts(value, levels - 1, seen)
    if kind is tuple and len(obj) == 1:
        yield ","
    yield close


def saferepr(obj: Any, maxsize: int = 1024, maxlevels: int = 3) -> str:
    """``repr`` bounded in depth and length (cut with ``...``), never raising.

    Stops producing text once ``maxsize`` is passed, so huge arguments stay cheap.
    """
    out: list[str] = []
    size = 0
    for part in _repr_parts(obj, maxlevels, set()):
        out.append(part)
        size += len(part)
        if size > maxsize:
            return "".join(out)[:maxsize] + "..."
    return "".join(out)
