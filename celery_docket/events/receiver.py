"""Receive monitoring events: ``app.events.Receiver``, Celery's ``EventReceiver``.

Monitoring scripts written for Celery do ``with app.connection() as conn:
app.events.Receiver(conn, handlers={'*': state.event}).capture()``. This receiver
subscribes to the ``celeryev`` channels of the app's Redis (``PSUBSCRIBE /<db>.celeryev/*``,
what kombu does for a fanout queue bound with ``#``), unwraps kombu's envelope and calls the
handler of each event's type, or ``'*'``. It hears our workers and real Celery's alike,
including Celery's batched ``task.multi`` messages. It also works on ``memory://``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from .dispatcher import EXCHANGE, channel_of

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Any]


def decode_envelope(data: bytes | str) -> list[dict[str, Any]]:
    """The events in one published message (several for Celery's ``task.multi``)."""
    message = json.loads(data)
    body: Any = message.get("body")
    properties = message.get("properties") or {}
    if properties.get("body_encoding") == "base64" and isinstance(body, str):
        body = base64.b64decode(body)
    if isinstance(body, bytes):
        body = body.decode(message.get("content-encoding") or "utf-8")
    if message.get("content-type", "application/json") != "application/json":
        raise ValueError(f"cannot decode events of type {message.get('content-type')!r}")
    decoded = json.loads(body) if isinstance(body, str) else body
    if isinstance(decoded, list):
        return [e for e in decoded if isinstance(e, dict)]
    return [decoded] if isinstance(decoded, dict) else []


class EventReceiver:
    """Capture events; ``handlers`` maps an event type (or ``'*'``) to a callable."""

    def __init__(
        self,
        channel: Any = None,
        handlers: dict[str, Handler] | None = None,
        routing_key: str = "#",
        node_id: str | None = None,
        app: Any = None,
        queue_prefix: str | None = None,
        accept: Any = None,
        **kwargs: Any,
    ) -> None:
        if app is None:
            from .._state import current_app

            app = current_app
        self.app = app
        self.channel = channel
        self.handlers = dict(handlers or {})
        self.routing_key = routing_key
        self.node_id = node_id
        self.exchange = str(app.conf.get("event_exchange") or EXCHANGE)
        self.should_stop = False
        self._pubsub: Any = None

    # -- Celery's surface

    def process(self, type: str, event: dict[str, Any]) -> None:  # noqa: A002
        handler = self.handlers.get(type) or self.handlers.get("*")
        if handler is not None:
            handler(event)

    def event_from_message(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body.setdefault("local_received", time.time())
        return str(body.get("type")), body

    def capture(
        self, limit: int | None = None, timeout: float | None = None, wakeup: bool = True
    ) -> None:
        """Process events until ``limit`` events, ``timeout`` seconds of silence or
        :meth:`stop` (``should_stop``)."""
        for _ in self.itercapture(limit=limit, timeout=timeout, wakeup=wakeup):
            pass

    def itercapture(
        self, limit: int | None = None, timeout: float | None = None, wakeup: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Yield each event after its handler ran (``timeout``: stop after that much silence)."""
        self._subscribe()
        count = 0
        idle_since = time.monotonic()
        try:
            while not self.should_stop:
                message = self._pubsub.get_message(timeout=0.5)
                if message is None or message.get("type") != "pmessage":
                    if timeout is not None and time.monotonic() - idle_since >= timeout:
                        return
                    continue
                idle_since = time.monotonic()
                try:
                    events = decode_envelope(message["data"])
                except Exception as exc:  # noqa: BLE001 - one bad message must not stop us
                    log.warning("cannot decode an event message: %s", exc)
                    continue
                for body in events:
                    type_, event = self.event_from_message(body)
                    self.process(type_, event)
                    count += 1
                    yield event
                    if limit is not None and count >= limit:
                        return
        finally:
            self._unsubscribe()

    def stop(self) -> None:
        self.should_stop = True

    def __enter__(self) -> EventReceiver:
        """Subscribe now: events sent inside the block wait for :meth:`capture`."""
        self._subscribe()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self._unsubscribe()

    # -- pub/sub

    def pattern(self) -> str:
        """``#`` (every event) becomes ``*``, as kombu's Redis transport does."""
        redis = self.app.docket.redis
        return channel_of(redis, self.exchange, self.routing_key.replace("#", "*"))

    def _subscribe(self) -> None:
        if self._pubsub is None:
            self._pubsub = self.app.docket.redis.pubsub(ignore_subscribe_messages=True)
            self._pubsub.psubscribe(self.pattern())

    def _unsubscribe(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:
                log.debug("closing the event subscription failed", exc_info=True)
