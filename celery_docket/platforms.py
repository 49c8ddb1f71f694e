"""``celery.platforms``: the process helpers projects import (exit codes, ``signals``)."""

from __future__ import annotations

import os
import signal as _signal
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = (
    "EX_FAILURE",
    "EX_OK",
    "EX_UNAVAILABLE",
    "EX_USAGE",
    "IS_WINDOWS",
    "IS_macOS",
    "Signals",
    "isatty",
    "signals",
)

EX_OK = getattr(os, "EX_OK", 0)
EX_FAILURE = 1
EX_UNAVAILABLE = getattr(os, "EX_UNAVAILABLE", 69)
EX_USAGE = getattr(os, "EX_USAGE", 64)
IS_WINDOWS = sys.platform == "win32"
IS_macOS = sys.platform == "darwin"  # Celery's name


def isatty(fh: Any) -> bool:
    """Whether ``fh`` is a terminal (False for objects without ``isatty``)."""
    try:
        return bool(fh.isatty())
    except (AttributeError, ValueError):
        return False


class Signals:
    """Signal handlers by name: ``signals["INT"] = handler``, ``signals.ignore("HUP")``."""

    ignored = _signal.SIG_IGN
    default = _signal.SIG_DFL

    @staticmethod
    def signum(name: int | str) -> int:
        if isinstance(name, int):
            return name
        upper = name.upper()
        return int(getattr(_signal, upper if upper.startswith("SIG") else f"SIG{upper}"))

    def supported(self, name: int | str) -> bool:
        try:
            self.signum(name)
        except AttributeError:
            return False
        return True

    def __getitem__(self, name: int | str) -> Any:
        return _signal.getsignal(self.signum(name))

    def __setitem__(self, name: int | str, handler: Callable[..., Any] | int) -> None:
        try:
            _signal.signal(self.signum(name), handler)
        except (AttributeError, ValueError):
            pass  # an unknown signal, or not the main thread: Celery ignores these too

    def update(self, _map: Mapping[str, Any] | None = None, **handlers: Any) -> None:
        for name, handler in dict(_map or {}, **handlers).items():
            self[name] = handler

    def ignore(self, *names: int | str) -> None:
        for name in names:
            self[name] = self.ignored

    def reset(self, *names: int | str) -> None:
        for name in names:
            self[name] = self.default

    def reset_alarm(self) -> None:
        _signal.alarm(0)

    def arm_alarm(self, seconds: float) -> None:
        _signal.setitimer(_signal.ITIMER_REAL, seconds)

    def __iter__(self) -> Iterator[str]:
        return iter(s.name for s in _signal.Signals)


signals = Signals()
