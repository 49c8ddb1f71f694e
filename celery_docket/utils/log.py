"""Logging helpers matching ``celery.utils.log``.

Loggers use Celery's names (``celery``, ``celery.task``, ``celery.worker``) on purpose:
logging configuration written for a Celery deployment (levels, handlers, filters
targeting ``celery.task``) applies unchanged to apps running on celery_docket.
"""

from __future__ import annotations

import logging
import numbers
import sys
from collections.abc import Callable
from typing import Any

__all__ = (
    "ColorFormatter",
    "TaskFormatter",
    "base_logger",
    "get_current_task",
    "get_logger",
    "get_task_logger",
    "mlevel",
    "set_current_task_getter",
    "task_logger",
    "worker_logger",
)

#: Task loggers must not take these names: they are the parents of everything else.
RESERVED_LOGGER_NAMES = frozenset({"celery", "celery.task"})


def _named_logger(name: str) -> logging.Logger:
    """Fetch a logger, giving it a NullHandler so unconfigured apps stay quiet (as Celery)."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def _descends_from(logger: logging.Logger, ancestor: logging.Logger) -> bool:
    node: logging.Logger | None = logger
    seen: set[int] = set()
    while node is not None:
        if node is ancestor:
            return True
        if id(node) in seen:
            raise RuntimeError(f"Logger {logger.name!r} parents recursive")
        seen.add(id(node))
        node = node.parent
    return False


def _adopt(parent: logging.Logger, logger: logging.Logger) -> logging.Logger:
    """Re-parent ``logger`` under ``parent`` unless it already propagates there."""
    if not _descends_from(logger, parent):
        logger.parent = parent
    return logger


#: Every logger from :func:`get_logger` propagates through this one.
base_logger = _named_logger("celery")


def get_logger(name: str) -> logging.Logger:
    """Return the logger ``name``, hooked under ``celery`` as Celery does.

    A top-level logger (whose parent is the root) is left alone; a nested one that
    does not already propagate to ``celery`` is re-parented under it.
    """
    logger = _named_logger(name)
    if logging.root not in (logger, logger.parent) and logger is not base_logger:
        logger = _adopt(base_logger, logger)
    return logger


#: Parent of every task logger; configure this to control all task output.
task_logger = get_logger("celery.task")
#: Logger used for worker messages.
worker_logger = get_logger("celery.worker")


def get_task_logger(name: str) -> logging.Logger:
    """Return a logger for task code; it always propagates to ``celery.task``."""
    if name in RESERVED_LOGGER_NAMES:
        raise RuntimeError(f"Logger name {name!r} is reserved!")
    return _adopt(task_logger, get_logger(name))


def mlevel(level: int | str | None) -> int | str | None:
    """Turn a level name such as ``"info"`` into its number; numbers pass through."""
    if level and not isinstance(level, numbers.Integral):
        name = str(level).upper()
        value = logging.getLevelName(name)
        if not isinstance(value, int):
            raise KeyError(name)
        return value
    return level


# -- current task hook ---------------------------------------------------------------------


def _no_current_task() -> Any:
    return None


_current_task_getter: Callable[[], Any] = _no_current_task


def set_current_task_getter(getter: Callable[[], Any] | None) -> None:
    """Register how formatters find the running task.

    The worker calls this with a function returning an object that has
    ``.request.id`` and ``.name`` (or ``None`` outside a task). This keeps the
    logging module free of imports from the worker. ``None`` restores the default.
    """
    global _current_task_getter
    _current_task_getter = getter if getter is not None else _no_current_task


def get_current_task() -> Any:
    """The running task according to the registered getter, or ``None``."""
    return _current_task_getter()


# -- formatters ----------------------------------------------------------------------------

_RESET = "\x1b[0m"


def _ansi(code: int) -> str:
    return f"\x1b[1;{30 + code}m"


class ColorFormatter(logging.Formatter):
    """Formatter that colours whole lines by level, for terminals."""

    #: Level name -> ANSI start sequence (INFO stays uncoloured, as in Celery).
    colors: dict[str, str] = {
        "DEBUG": _ansi(4),
        "WARNING": _ansi(3),
        "ERROR": _ansi(1),
        "CRITICAL": _ansi(5),
    }

    def __init__(
        self, fmt: str | None = None, use_color: bool = True, datefmt: str | None = None
    ) -> None:
        super().__init__(fmt, datefmt)
        self.use_color = use_color

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging.Formatter's name
        # A record built with exc_info=True (not a tuple) means "the current exception".
        if ei and not isinstance(ei, tuple):
            ei = sys.exc_info()
        return super().formatException(ei)

    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
        color = self.colors.get(record.levelname)
        if color and self.use_color:
            return f"{color}{msg}{_RESET}"
        return msg


class TaskFormatter(ColorFormatter):
    """Formatter that fills ``%(task_id)s`` and ``%(task_name)s`` from the running task.

    Outside a task both read ``???``, like Celery's, so one format string serves
    every record.
    """

    def format(self, record: logging.LogRecord) -> str:
        task = get_current_task()
        request = getattr(task, "request", None) if task else None
        if task and request:
            record.__dict__.update(task_id=request.id, task_name=task.name)
        else:
            record.__dict__.setdefault("task_name", "???")
            record.__dict__.setdefault("task_id", "???")
        return super().format(record)
