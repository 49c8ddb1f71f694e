"""Checks of a task message's headers and the soft time limit, for the handler."""

from __future__ import annotations

import signal
import threading
from datetime import datetime, timezone
from typing import Any

from ..exceptions import InvalidTaskError, SoftTimeLimitExceeded


def time_limits(
    headers: dict[str, Any], task: Any, hard: float | None, soft: float | None, app: Any
) -> tuple[float | None, float | None]:
    """(hard, soft) for one run: the message's, else the task's, the worker's, the app's."""
    sent_hard, sent_soft = (headers.get("timelimit") or [None, None])[:2]
    return (
        sent_hard or task.time_limit or hard or app.conf.task_time_limit,
        sent_soft or task.soft_time_limit or soft or app.conf.task_soft_time_limit,
    )


def check_headers(headers: dict[str, Any]) -> None:
    """Refuse headers the worker would choke on later (InvalidTaskError), before it runs."""
    expires = headers.get("expires")
    if expires is not None and not isinstance(expires, datetime):
        try:
            parse_date(expires)
        except (TypeError, ValueError) as exc:
            raise InvalidTaskError(f"header 'expires' is not a date: {expires!r}") from exc
    limits = headers.get("timelimit")
    if limits is not None:
        ok = isinstance(limits, list | tuple) and all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v >= 0)
            for v in limits[:2]
        )
        if not ok:
            raise InvalidTaskError(f"header 'timelimit' is not [hard, soft] seconds: {limits!r}")


def parse_date(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class soft_limit:  # noqa: N801 - used as a context manager
    """Raise SoftTimeLimitExceeded inside the task after ``seconds`` (main thread: SIGALRM)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.timer: threading.Timer | None = None
        self.previous: Any = None

    def __enter__(self) -> None:
        if not self.seconds:
            return
        if threading.current_thread() is threading.main_thread():

            def _raise(_signum: int, _frame: Any) -> None:
                raise SoftTimeLimitExceeded()

            self.previous = signal.signal(signal.SIGALRM, _raise)
            signal.setitimer(signal.ITIMER_REAL, float(self.seconds))
        else:
            import ctypes

            ident = threading.get_ident()

            def _inject() -> None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(SoftTimeLimitExceeded)
                )

            self.timer = threading.Timer(float(self.seconds), _inject)
            self.timer.daemon = True
            self.timer.start()

    def __exit__(self, *exc: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()
        elif self.seconds and threading.current_thread() is threading.main_thread():
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous or signal.SIG_DFL)
