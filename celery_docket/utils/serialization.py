"""Exceptions that survive a trip through a result backend (``celery.utils.serialization``).

An exception whose class cannot be pickled or rebuilt on the client side is stored as an
:class:`UnpickleableExceptionWrapper` carrying the class's module, name, arguments and text,
so ``get()`` still raises something that says what happened.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = (
    "UnpickleableExceptionWrapper",
    "create_exception_cls",
    "get_pickleable_exception",
    "get_pickled_exception",
)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the original error
        return f"<unrepresentable {type(value).__name__}>"


class UnpickleableExceptionWrapper(Exception):
    """Stands in for an exception that could not be pickled."""

    exc_module: str
    exc_cls_name: str
    exc_args: tuple[Any, ...]
    text: str

    def __init__(
        self, exc_module: str, exc_cls_name: str, exc_args: Any, text: str | None = None
    ) -> None:
        safe_args = []
        for arg in exc_args or ():
            try:
                pickle.dumps(arg)
                safe_args.append(arg)
            except Exception:  # noqa: BLE001 - pickling a user's argument may fail in any way
                safe_args.append(_safe_repr(arg))
        self.exc_module = exc_module
        self.exc_cls_name = exc_cls_name
        self.exc_args = tuple(safe_args)
        self.text = text if text is not None else ""
        super().__init__(exc_module, exc_cls_name, self.exc_args, self.text)

    def restore(self) -> BaseException:
        """The original exception rebuilt from its class and arguments, where possible."""
        cls = create_exception_cls(self.exc_cls_name, self.exc_module)
        try:
            return cls(*self.exc_args)
        except Exception:  # noqa: BLE001 - a user's exception class may refuse its arguments
            return cls(self.text)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def from_exception(cls, exc: BaseException) -> UnpickleableExceptionWrapper:
        return cls(
            type(exc).__module__,
            type(exc).__name__,
            getattr(exc, "args", ()),
            _safe_repr(exc),
        )


def create_exception_cls(name: str, module: str, parent: type | None = None) -> type:
    """The named exception class, or a stand-in class of that name when it is unknown."""
    import importlib

    try:
        found = getattr(importlib.import_module(module), name)
        if isinstance(found, type) and issubclass(found, BaseException):
            return found
    except Exception:  # noqa: BLE001 - importing a user's module may fail in any way
        pass
    return type(name, (parent or Exception,), {"__module__": module})


def get_pickleable_exception(exc: BaseException) -> BaseException:
    """``exc`` itself when it pickles and unpickles, else its wrapper."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - pickling a user's exception may fail in any way
        return UnpickleableExceptionWrapper.from_exception(exc)
    return exc


def get_pickled_exception(exc: BaseException) -> BaseException:
    """The exception a wrapper stands for, restored; any other exception as it is."""
    if isinstance(exc, UnpickleableExceptionWrapper):
        return exc.restore()
    return exc
