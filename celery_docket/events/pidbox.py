"""Answer real Celery's ``inspect`` broadcasts, so Flower and ``celery inspect`` see us.

Our own ``app.control.inspect()`` reads worker state from Redis and needs no broadcast.
Tools that run on real Celery (Flower's worker list, ``celery -A proj inspect stats``)
instead broadcast on kombu's ``celery.pidbox`` fanout exchange and wait for replies on
``reply.celery.pidbox``. :class:`PidboxResponder` is a kombu pidbox node with the worker's
name: it hears those broadcasts and answers each inspect method with what our own inspect
reads from Redis for this node, in Celery's reply shapes. Methods we do not answer
(``hello`` from a starting Celery worker, control commands other than ``revoke``) get no
reply, as from a node that does not have them, rather than an error reply. A ``revoke``
is passed to our own ``app.control.revoke`` (every node that hears it does so; revoking
twice is harmless). kombu is a dependency already; its
Redis transport does the wire format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kombu.pidbox

Connection: Any = kombu.Connection  # type: ignore[attr-defined]  # kombu is untyped
Mailbox: Any = kombu.pidbox.Mailbox
Node: Any = kombu.pidbox.Node

log = logging.getLogger("celery.worker.pidbox")

#: inspect methods answered, with how their broadcast arguments map to our Inspect call
INSPECT_METHODS = (
    "active",
    "active_queues",
    "query_task",
    "registered",
    "report",
    "reserved",
    "revoked",
    "scheduled",
    "stats",
)


class _Node(Node):  # type: ignore[misc]
    """A pidbox node that stays silent on methods it has no handler for."""

    def dispatch(
        self,
        method: str,
        arguments: Any = None,
        reply_to: Any = None,
        ticket: Any = None,
        **kw: Any,
    ) -> Any:
        if method not in (self.handlers or {}):
            return None
        return super().dispatch(method, arguments, reply_to=reply_to, ticket=ticket, **kw)


class _Mailbox(Mailbox):  # type: ignore[misc]
    node_cls = _Node


def kombu_url(broker_url: str) -> str | None:
    """The broker URL for kombu, or None where kombu cannot reach our broker."""
    if broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    return None


def make_handlers(app: Any, hostname: str) -> dict[str, Callable[..., Any]]:
    """Handlers ``(state, **arguments) -> reply`` for one node name."""

    def ask(method: str, *args: Any, **kwargs: Any) -> Any:
        inspect = app.control.inspect(destination=[hostname])
        replies = getattr(inspect, method)(*args, **kwargs) or {}
        return replies.get(hostname)

    def handler(method: str) -> Callable[..., Any]:
        def handle(state: Any, **arguments: Any) -> Any:
            if method == "registered":
                return ask(method, *(arguments.get("taskinfoitems") or ()))
            if method == "query_task":
                return ask(method, *(arguments.get("ids") or ()))
            if method in ("active", "reserved", "scheduled"):
                return ask(method, safe=arguments.get("safe"))
            return ask(method)

        return handle

    def revoke(state: Any, task_id: Any = None, terminate: bool = False, **kw: Any) -> Any:
        ids = [task_id] if isinstance(task_id, str) else [str(i) for i in task_id or ()]
        app.control.revoke(ids, terminate=terminate, signal=kw.get("signal") or "SIGTERM")
        return {"ok": f"tasks {', '.join(ids)} flagged as revoked"}

    handlers = {m: handler(m) for m in INSPECT_METHODS}
    handlers["revoke"] = revoke  # a real Celery client's revoke (Flower's button, a producer)
    handlers["ping"] = lambda state, **arguments: {"ok": "pong"}
    handlers["clock"] = lambda state, **arguments: {"clock": 0}
    handlers["conf"] = lambda state, **arguments: _conf(app)
    return handlers


def _conf(app: Any) -> dict[str, Any]:
    """A few settings, JSON-safe and without credentials (Flower's worker page shows them)."""
    from ..utils.urls import redact_url

    out: dict[str, Any] = {}
    for name in ("broker_url", "result_backend"):
        value = app.conf.get(name)
        if value:
            out[name] = redact_url(str(value))
    for name in ("task_default_queue", "task_serializer", "result_serializer", "timezone"):
        value = app.conf.get(name)
        if isinstance(value, (str, int, float, bool)):
            out[name] = value
    out["include"] = list(app.conf.get("include") or ())
    return out


class PidboxResponder:
    """A pidbox node on the broker; call :meth:`drain` in a loop, :meth:`close` at the end."""

    def __init__(self, app: Any, hostname: str, url: str) -> None:
        self.app = app
        self.hostname = hostname
        namespace = str(app.conf.get("control_exchange") or "celery")
        self.connection = Connection(url)
        self.mailbox = _Mailbox(namespace, type="fanout", accept=["json"])(self.connection)
        self.node = self.mailbox.Node(
            hostname, channel=self.connection.default_channel, handlers=make_handlers(app, hostname)
        )
        self.consumer = self.node.listen()

    def drain(self, timeout: float) -> None:
        """Answer the broadcasts that arrive within ``timeout`` seconds."""
        try:
            self.connection.drain_events(timeout=timeout)
        except TimeoutError:
            pass

    def close(self) -> None:
        try:
            self.consumer.cancel()
        except Exception:
            log.debug("cancelling the pidbox consumer failed", exc_info=True)
        self.connection.release()
