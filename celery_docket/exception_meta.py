"""Exceptions in result meta: Celery's portable form (type, args, module) and back.

What a FAILURE or RETRY result stores in place of the exception, and how a reader rebuilds
it without importing anything stored data names (Celery's own rule), so either side reads
the other's results.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from kombu.serialization import dumps

from .exceptions import SecurityError
from .utils.saferepr import saferepr

__all__ = [
    "UnpickleableExceptionWrapper",
    "exception_to_meta",
    "meta_to_exception",
    "pickleable_exception",
]


class UnpickleableExceptionWrapper(Exception):
    """Stands in, under the pickle serializer, for an exception that cannot be pickled."""

    def __init__(self, exc_module: str, exc_cls_name: str, exc_args: tuple[Any, ...], text: str):
        self.exc_module = exc_module
        self.exc_cls_name = exc_cls_name
        self.exc_args = exc_args
        self.text = text
        super().__init__(exc_module, exc_cls_name, exc_args, text)

    def __str__(self) -> str:
        return self.text


def _serializable_args(args: Iterable[Any], serializer: str) -> list[Any]:
    """Exception args as they are when the serializer takes them, else as their repr."""
    out = []
    for arg in args:
        try:
            dumps(arg, serializer)
            out.append(arg)
        except Exception:  # noqa: BLE001 - a user's argument may fail to encode in any way: keep its repr
            out.append(saferepr(arg))
    return out


def exception_to_meta(exc: BaseException, serializer: str = "json") -> dict[str, Any]:
    """Celery's portable form of an exception: type, args and module."""
    cls = type(exc)
    return {
        "exc_type": getattr(cls, "__qualname__", cls.__name__),
        "exc_message": _serializable_args(exc.args, serializer),
        "exc_module": cls.__module__,
    }


def pickleable_exception(exc: BaseException) -> BaseException:
    """``exc`` when it survives pickling, else a wrapper that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - a user's exception may fail to encode in any way: fall back to pickle
        meta = exception_to_meta(exc, "pickle")
        return UnpickleableExceptionWrapper(
            meta["exc_module"], meta["exc_type"], tuple(meta["exc_message"]), saferepr(exc)
        )


@lru_cache(maxsize=256)
def _fallback_exception_class(name: str) -> type[Exception]:
    """Stand-in class when the original is not loaded; cached so equal names share one."""
    return type(name, (Exception,), {"__module__": "celery_docket.exceptions"})


def meta_to_exception(meta: Any) -> BaseException | None:
    """Rebuild an exception stored by :func:`exception_to_meta` (or by Celery).

    As Celery does, only modules already in ``sys.modules`` are searched (stored data never
    triggers an import); a missing class becomes a same-named ``Exception`` subclass, and a
    name that resolves to something other than an exception class raises ``SecurityError``.
    """
    if not meta:
        return None
    if isinstance(meta, BaseException):
        if all(hasattr(meta, a) for a in ("exc_module", "exc_cls_name", "exc_args")):
            meta = {
                "exc_type": meta.exc_cls_name,  # type: ignore[attr-defined]
                "exc_module": meta.exc_module,  # type: ignore[attr-defined]
                "exc_message": meta.exc_args,  # type: ignore[attr-defined]
            }
        else:
            return meta
    if not isinstance(meta, dict):
        try:
            meta = dict(meta)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"stored exception must be an exception or a dict: {meta!r}") from exc
    if "exc_type" not in meta:
        raise ValueError("exception information must include the exception type")
    exc_type, exc_module = meta["exc_type"], meta.get("exc_module")
    message = meta.get("exc_message", "")
    cls: Any = None
    if exc_module is not None and exc_module in sys.modules:
        cls = sys.modules[exc_module]
        for part in str(exc_type).split("."):
            cls = getattr(cls, part, None)
            if cls is None:
                break
    if cls is None:
        cls = _fallback_exception_class(str(exc_type))
    if not isinstance(cls, type) or not issubclass(cls, BaseException):
        where = exc_type if exc_module is None else f"{exc_module}.{exc_type}"
        raise SecurityError(f"Expected an exception class, got {where} with payload {message}")
    try:
        return cls(*message) if isinstance(message, list | tuple) else cls(message)
    except Exception:  # noqa: BLE001 - a user's exception class may refuse its arguments
        return Exception(f"{cls}({message})")
