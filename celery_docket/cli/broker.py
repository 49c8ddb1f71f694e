"""Reaching the broker from a command: fail fast on one line, never with a traceback.

A worker that cannot reach Redis should say so at once (``Cannot connect to redis://...``)
instead of retrying silently, and a command that runs in its own process must refuse an
in-process ``memory://`` broker it could never reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import click

from ..utils.urls import redact_url
from .loader import CLIContext

__all__ = (
    "BrokerError",
    "broker_errors",
    "broker_url",
    "check_broker",
    "connection_errors",
    "one_line",
    "refuse_memory",
    "remote_app",
    "safe_url",
    "warn_if_memory",
)

safe_url = redact_url


def connection_errors() -> tuple[type[BaseException], ...]:
    """What "the broker cannot be reached" raises (imported on use: ``--help`` stays fast)."""
    import redis

    from ..engine import BrokerUnavailable as EngineUnavailable
    from ..exceptions import BrokerUnavailable

    return (
        OSError,
        ConnectionError,
        redis.ConnectionError,
        redis.TimeoutError,
        EngineUnavailable,
        BrokerUnavailable,
    )


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class BrokerError(click.ClickException):
    """The broker could not be reached: one line, exit status 1."""

    def __init__(self, url: str | None, exc: BaseException) -> None:
        where = f" to {safe_url(url)}" if url else ""
        super().__init__(f"Cannot connect{where}: {one_line(exc)}")


@contextmanager
def broker_errors(url: str | None) -> Iterator[None]:
    """Turn connection failures raised in the body into :class:`BrokerError`."""
    try:
        yield
    except click.ClickException:
        raise
    except connection_errors() as exc:
        raise BrokerError(url, exc) from None


def check_broker(url: str | None, timeout: float = 5.0, conf: Any = None) -> None:
    """Fail fast (one line) when a Redis broker refuses connections.

    ``memory://`` needs no check. Anything else is pinged once with a short timeout.
    """
    if not url or urlsplit(str(url)).scheme in ("", "memory"):
        return
    with broker_errors(str(url)):
        from ..engine import connect

        try:
            from ..app.redis_options import broker_options

            options = broker_options(conf) if conf is not None else {}
            backend = connect(str(url), socket_timeout=timeout, **options)
        except ValueError as exc:
            raise click.ClickException(f"Invalid broker URL {safe_url(str(url))}: {exc}") from None
        try:
            backend.client.ping()
        finally:
            try:
                backend.close()
            except Exception:  # noqa: BLE001  # pragma: no cover - closing a dead connection
                pass


def broker_url(app: Any) -> str | None:
    """The URL the app will connect to (``app.broker_url`` applies the default)."""
    try:
        url = app.conf.broker_url or getattr(app, "broker_url", None)
    except Exception:  # noqa: BLE001 - a broken config source is reported where it is used
        return None
    return str(url) if url else None


def warn_if_memory(obj: CLIContext, url: str | None) -> None:
    if url and urlsplit(url).scheme == "memory":
        obj.warn(
            f"the broker is {url}, which lives inside this one process: no worker can see "
            "it. Give a Redis URL with -b or CELERY_BROKER_URL."
        )


def refuse_memory(url: str | None, command: str) -> None:
    """``call``/``result`` run in their own process: an in-process broker is unreachable."""
    if url and urlsplit(url).scheme == "memory":
        raise click.ClickException(
            f"the broker is {url}, which lives inside one process: `celery-docket {command}` "
            "runs in a separate process and cannot reach it (a task sent there would never "
            "run, a result never arrive). Give a Redis URL with -b or CELERY_BROKER_URL."
        )


def remote_app(obj: CLIContext) -> Any:
    app = obj.app
    url = broker_url(app)
    warn_if_memory(obj, url)
    check_broker(url, conf=app.conf)
    return app
