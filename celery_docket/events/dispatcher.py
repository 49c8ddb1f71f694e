"""Publish monitoring events the way Celery's dispatcher does on a Redis broker.

Flower, celery-exporter and ``celery events`` subscribe to kombu's fanout exchange
``celeryev``; on Redis kombu publishes such a message with ``PUBLISH /<db>.celeryev/<key>``
(the routing key is the event type with ``-`` made ``.``: ``task.succeeded``) and the
payload is kombu's JSON envelope around a base64 body. We write that envelope ourselves
with the app's own Redis client (one ``PUBLISH`` per event, no kombu connection, no
declare round trip), so a real Celery receiver on the same Redis decodes it as its own.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

log = logging.getLogger(__name__)

EXCHANGE = "celeryev"
#: what Celery puts in ``sw_ident``; we say who we are instead
SW_IDENT = "celery-docket"


def utcoffset() -> float:
    """Hours west of UTC, as Celery's ``utcoffset()`` reports it (0 on a UTC machine)."""
    dst = time.daylight and time.localtime().tm_isdst > 0
    return (time.altzone if dst else time.timezone) / 3600.0


def Event(type: str, _fields: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:  # noqa: N802, A002
    """An event as Celery builds it: the fields, then ``timestamp`` and ``type``."""
    event = dict(_fields or {}, **fields)
    event["timestamp"] = event.get("timestamp") or time.time()
    event["type"] = type
    return event


def routing_key_of(type: str) -> str:  # noqa: A002
    """``task-succeeded`` -> ``task.succeeded``."""
    return type.replace("-", ".")


def group_from(type: str) -> str:  # noqa: A002
    """The group of an event type: ``task`` for ``task-sent``."""
    return type.split("-", 1)[0]


class LamportClock:
    """A logical clock, forwarded for every event this process sends."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.value = 0

    def forward(self) -> int:
        self.value = next(self._counter)
        return self.value


clock = LamportClock()


def envelope(event: Any, routing_key: str, hostname: str) -> str:
    """kombu's message envelope for ``event`` on the ``celeryev`` exchange, as JSON."""
    body = json.dumps(event, default=str).encode()
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"hostname": hostname},
            "properties": {
                "delivery_mode": 1,
                "delivery_info": {"exchange": EXCHANGE, "routing_key": routing_key},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def channel_of(redis: Any, exchange: str, routing_key: str) -> str:
    """The pub/sub channel kombu's Redis transport uses for a fanout exchange."""
    db = 0
    pool = getattr(redis, "connection_pool", None)
    if pool is not None:
        db = int(pool.connection_kwargs.get("db") or 0)
    return f"/{db}.{exchange}/{routing_key}"


class EventDispatcher:
    """Send events (``app.events.Dispatcher()``, Celery's ``EventDispatcher``).

    ``connection`` is accepted for Celery's signature; events go through the app's Redis
    client. ``groups`` limits what is sent (``['worker']`` drops task events), and a
    disabled dispatcher sends nothing. Events of a group in ``buffer_group`` are held and
    published together as one ``task.multi`` message (a JSON list, as Celery's worker does)
    when ``buffer_limit`` are waiting, else by a flusher thread every ``flush_interval``
    seconds, so a busy worker pays one ``PUBLISH`` per batch, not three per task.
    Publishing never raises: a monitoring event lost while Redis is away must not fail
    its task.
    """

    def __init__(
        self,
        connection: Any = None,
        hostname: str | None = None,
        enabled: bool = True,
        channel: Any = None,
        buffer_while_offline: bool = True,
        app: Any = None,
        serializer: str | None = None,
        groups: Any = None,
        delivery_mode: int = 1,
        buffer_group: Any = None,
        buffer_limit: int = 100,
        flush_interval: float = 0.1,
        **kwargs: Any,
    ) -> None:
        if app is None:
            from .._state import current_app

            app = current_app
        self.app = app
        self.connection = connection
        self.hostname = hostname or f"gen{os.getpid()}@{socket.gethostname()}"
        self.enabled = enabled
        self.groups = set(groups or ())
        self.buffer_group = frozenset(buffer_group or ())
        self.buffer_limit = max(1, int(buffer_limit))
        self.flush_interval = flush_interval
        self.exchange = str(app.conf.get("event_exchange") or EXCHANGE)
        self.on_enabled: set[Any] = set()
        self.on_disabled: set[Any] = set()
        self._warned = False
        self._buffer: list[dict[str, Any]] = []
        self._owner = -1  # pid whose lock and flusher thread these are
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._utcoffset = utcoffset()

    @property
    def pid(self) -> int:
        return os.getpid()  # the child's pid after a fork

    def enable(self) -> None:
        self.enabled = True
        for callback in self.on_enabled:
            callback()

    def disable(self) -> None:
        self.flush()
        self._owner = -1  # the flusher thread of this process ends
        self._wake.set()
        self.enabled = False
        for callback in self.on_disabled:
            callback()

    def close(self) -> None:
        self.disable()

    def __enter__(self) -> EventDispatcher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def build(self, type: str, fields: dict[str, Any], blind: bool = False) -> dict[str, Any]:  # noqa: A002
        """The event ``send`` would publish, with Celery's common fields first."""
        tick = None if blind else clock.forward()
        if tick is None or tick % 1000 == 1:  # the offset changes twice a year at most
            self._utcoffset = utcoffset()
        event: dict[str, Any] = {
            "hostname": self.hostname,
            "utcoffset": self._utcoffset,
            "pid": os.getpid(),
            "clock": tick,
            **fields,
        }
        event.setdefault("timestamp", None)
        event["timestamp"] = event["timestamp"] or time.time()
        event["type"] = type
        return event

    def send(self, type: str, blind: bool = False, **fields: Any) -> dict[str, Any] | None:  # noqa: A002
        """Publish one event; returns it (None when disabled or not in ``groups``)."""
        if not self.enabled:
            return None
        group = group_from(type)
        if self.groups and group not in self.groups:
            return None
        event = self.build(type, fields, blind=blind)
        if group in self.buffer_group:
            self._hold(event)
        else:
            self.publish_event(event)
        return event

    def publish(self, type: str, fields: dict[str, Any], producer: Any = None, **kw: Any) -> Any:  # noqa: A002
        """Celery's lower-level ``publish(type, fields, producer)``."""
        event = self.build(type, dict(fields), blind=bool(kw.get("blind")))
        self.publish_event(event)
        return event

    def publish_event(self, event: dict[str, Any]) -> None:
        self._publish(routing_key_of(str(event["type"])), event)

    def _publish(self, routing_key: str, body: Any) -> None:
        redis = self.app.docket.redis
        payload = envelope(body, routing_key, self.hostname)
        try:
            redis.publish(channel_of(redis, self.exchange, routing_key), payload)
        except Exception as exc:  # noqa: BLE001 - monitoring must never fail a task
            if not self._warned:
                self._warned = True
                log.warning("cannot send %s events: %s", routing_key, exc)
        else:
            self._warned = False

    # -- buffered groups

    def _hold(self, event: dict[str, Any]) -> None:
        if self._owner != os.getpid():
            self._adopt()
        with self._lock:
            self._buffer.append(event)
            size = len(self._buffer)
        if size >= self.buffer_limit:
            self.flush()

    def _adopt(self) -> None:
        """A new process (first use, or a forked child): fresh lock, buffer and flusher."""
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._buffer = []
        self._wake = threading.Event()
        threading.Thread(
            target=self._flusher, name="celery-docket-events-flush", daemon=True
        ).start()

    def _flusher(self) -> None:
        """Every ``flush_interval``: publish what is held (nothing on the hot path wakes it)."""
        owner, wake = self._owner, self._wake
        while self._owner == owner and not wake.wait(self.flush_interval):
            if self._buffer:
                self.flush()

    def flush(self, *args: Any, **kwargs: Any) -> None:
        """Publish the held events now, as one ``task.multi`` message."""
        if self._owner != os.getpid():
            return  # nothing held in this process (a parent's buffer is not ours)
        with self._lock:
            held, self._buffer = self._buffer, []
        if len(held) == 1:
            self.publish_event(held[0])
        elif held:
            self._publish(f"{group_from(str(held[0]['type']))}.multi", held)
