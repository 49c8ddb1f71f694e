"""``app.connection()``: a handle on the broker, in the shape code written for kombu uses.

Celery hands out kombu ``Connection`` objects; ours stands for the app's engine client. What
code does with one is check the broker is there (``ensure_connection``), catch its errors
(``connection_errors``, ``recoverable_connection_errors``) and close it in a ``with`` block.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from ..exceptions import BrokerUnavailable
from ..utils.urls import redact_url

__all__ = ("BrokerConnection",)

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
    BrokerUnavailable,
)


class BrokerConnection:
    """The app's broker, as a context manager with kombu's error attributes."""

    connection_errors = _CONNECTION_ERRORS
    recoverable_connection_errors = _CONNECTION_ERRORS
    channel_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, app: Any, url: str | None = None) -> None:
        self.app = app
        self.url = url or app.broker_url

    def __enter__(self) -> BrokerConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    @property
    def connected(self) -> bool:
        try:
            return bool(self.app.docket.redis.ping())
        except _CONNECTION_ERRORS:
            return False

    def ensure_connection(
        self, errback: Any = None, max_retries: int | None = None, timeout: float | None = None
    ) -> BrokerConnection:
        """Ping the broker until it answers; raise ``BrokerUnavailable`` when retries run out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt = 0
        while True:
            try:
                self.app.docket.redis.ping()
                return self
            except _CONNECTION_ERRORS as exc:
                attempt += 1
                out_of_time = deadline is not None and time.monotonic() >= deadline
                if (max_retries is not None and attempt > max_retries) or out_of_time:
                    raise BrokerUnavailable(f"broker {self.as_uri()} unreachable: {exc}") from exc
                if errback is not None:
                    errback(exc, min(attempt, 5))
                time.sleep(min(0.1 * attempt, 1.0))

    connect = ensure_connection

    def as_uri(self, include_password: bool = False) -> str:
        return self.url if include_password else redact_url(self.url)

    def release(self) -> None:
        """Nothing to give back: the app's client pools its connections."""

    close = release
