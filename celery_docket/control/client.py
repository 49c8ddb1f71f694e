"""``app.control``: Celery's remote-control client over Redis.

Commands that change workers (revoke, shutdown, time limits, consumers, pool size) are written
to Redis where they must outlive a restart (revocations) and published on the control channel
every worker listens to (``worker/mailbox.py`` is the receiving end). Replies to them are
computed from the heartbeats rather than waited for, so they come at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..keys import control_channel
from .inspect import INSPECT_COMMANDS, UNSUPPORTED_INSPECT, Inspect
from .nodes import NodeView, live_nodes
from .notices import encode_notice
from .queues import app_queues, purge_queues
from .revoke import revoke_tasks, signum_of

__all__ = ["CONTROL_COMMANDS", "UNSUPPORTED_CONTROL", "Control"]

CONTROL_COMMANDS = (
    "add_consumer",
    "cancel_consumer",
    "heartbeat",
    "pool_grow",
    "pool_shrink",
    "rate_limit",
    "revoke",
    "shutdown",
    "terminate",
    "time_limit",
)
UNSUPPORTED_CONTROL = {
    "autoscale": "there is no autoscaler; use pool_grow/pool_shrink or -c",
    "pool_restart": "restart the worker (a process manager does this) instead",
    "enable_events": "celery-docket sends no task events; inspect reads Redis instead",
    "disable_events": "celery-docket sends no task events",
    "election": "workers hold no elections here",
    "revoke_by_stamped_headers": "revocation is by task id only",
}


class Control:
    """``app.control``: Celery's remote-control client over Redis (see the module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    # -- plumbing

    @property
    def _prefix(self) -> str:
        return str(self.app.docket.prefix)

    def _publish(self, command: str, arguments: dict[str, Any], destination: Any) -> None:
        notice = encode_notice(command, arguments, destination)
        self.app.docket.redis.publish(control_channel(self._prefix), notice)

    def _replies(
        self,
        make: Callable[[NodeView], Any],
        destination: Any,
        reply: bool,
        limit: int | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        pattern: str | None = None,
        matcher: str | None = None,
    ) -> list[dict[str, Any]] | None:
        if not reply:
            return None
        out = []
        for name, node in live_nodes(self.app, destination, pattern, matcher, limit).items():
            one = {name: make(node)}
            if callback is not None:
                callback(one)
            out.append(one)
        return out

    def inspect(
        self,
        destination: Any = None,
        timeout: float = 1.0,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        connection: Any = None,
        app: Any = None,
        limit: int | None = None,
        pattern: str | None = None,
        matcher: str | None = None,
    ) -> Inspect:
        return Inspect(
            destination, timeout, callback, connection, app or self.app, limit, pattern, matcher
        )

    # -- queues

    def purge(self, connection: Any = None) -> int:
        """Remove every waiting task of the app's queues; returns how many were removed."""
        return purge_queues(self.app, app_queues(self.app))

    discard_all = purge

    # -- revoking

    def revoke(
        self,
        task_id: str | Sequence[str],
        destination: Any = None,
        terminate: bool = False,
        signal: Any = "SIGTERM",
        **kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        """Revoke tasks by id: those not started never run; ``terminate`` also stops a
        running one (prefork: its process is signalled; threads/solo: it cannot be
        interrupted, but is never retried or redelivered)."""
        ids = [task_id] if isinstance(task_id, str) else [str(i) for i in task_id or ()]
        ids = list(dict.fromkeys(i for i in ids if i))
        signum = signum_of(signal) if terminate else None
        if ids:
            revoke_tasks(self.app, ids, terminate, signum, destination)

        def answer(node: NodeView) -> dict[str, Any]:
            if terminate:
                running = {t.get("id") for t in node.active}
                hit = [i for i in ids if i in running]
                return {"ok": f"terminate: {', '.join(hit)}" if hit else "terminate: tasks unknown"}
            return {"ok": f"tasks {set(ids)} flagged as revoked"}

        return self._replies(
            answer,
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
            kwargs.get("pattern"),
            kwargs.get("matcher"),
        )

    def terminate(
        self,
        task_id: str | Sequence[str],
        destination: Any = None,
        signal: Any = "SIGTERM",
        **kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        return self.revoke(
            task_id, destination=destination, terminate=True, signal=signal, **kwargs
        )

    def revoke_by_stamped_headers(self, headers: Any, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("revoke_by_stamped_headers")

    # -- pings and settings

    def ping(
        self, destination: Any = None, timeout: float = 1.0, **kwargs: Any
    ) -> list[dict[str, Any]]:
        return (
            self._replies(
                lambda _n: {"ok": "pong"},
                destination,
                True,
                kwargs.get("limit"),
                kwargs.get("callback"),
                kwargs.get("pattern"),
                kwargs.get("matcher"),
            )
            or []
        )

    def rate_limit(
        self, task_name: str, rate_limit: Any, destination: Any = None, **kwargs: Any
    ) -> list[dict[str, Any]] | None:
        """Set a task's rate limit for every worker at once (Celery: per worker, until it
        restarts). The limit is kept in Redis, so workers started later obey it too; 0 lifts
        any limit, ``"default"`` goes back to the task's own. ``destination`` cannot narrow
        a limit that holds across all workers: it only selects who replies."""
        from ..engine.ratelimit import RateLimits
        from ..utils.time import rate

        error = None
        per_second: float | None = None
        if str(rate_limit).strip().lower() != "default":
            try:
                per_second = rate(rate_limit)
            except (ValueError, KeyError, TypeError) as exc:
                error = f"Invalid rate limit string: {exc!r}"
        if error is None:
            RateLimits(self.app.docket.redis, self.app.docket.prefix).set_limit(
                task_name, per_second
            )

        def answer(node: NodeView) -> dict[str, Any]:
            if error is not None:
                return {"error": error}
            if task_name not in node.registered:
                return {"error": "unknown task"}
            return {"ok": "new rate limit set successfully"}

        return self._replies(
            answer,
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def time_limit(
        self,
        task_name: str,
        soft: float | None = None,
        hard: float | None = None,
        destination: Any = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        """Set a task's time limits on the running workers (and children they start)."""
        self._publish(
            "time_limit",
            {
                "task_name": task_name,
                "soft": None if soft is None else float(soft),
                "hard": None if hard is None else float(hard),
            },
            destination,
        )

        def answer(node: NodeView) -> dict[str, Any]:
            if task_name not in node.registered:
                return {"error": "unknown task"}
            return {"ok": "time limits set successfully"}

        return self._replies(
            answer,
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def add_consumer(
        self,
        queue: str,
        exchange: str | None = None,
        exchange_type: str = "direct",
        routing_key: str | None = None,
        options: dict[str, Any] | None = None,
        destination: Any = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        """Make the workers consume ``queue`` too (exchange and routing key are ignored)."""
        self._publish("add_consumer", {"queue": str(queue)}, destination)
        return self._replies(
            lambda _n: {"ok": f"add consumer {queue}"},
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def cancel_consumer(
        self, queue: str, destination: Any = None, **kwargs: Any
    ) -> list[dict[str, Any]] | None:
        """Make the workers stop reading ``queue``; what they hold from it finishes."""
        self._publish("cancel_consumer", {"queue": str(queue)}, destination)
        return self._replies(
            lambda _n: {"ok": f"no longer consuming from {queue}"},
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def _pool_answer(self, verb: str) -> Callable[[NodeView], dict[str, Any]]:
        def answer(node: NodeView) -> dict[str, Any]:
            if node.pool != "prefork":
                return {"error": f"pool_{verb} is not supported by the {node.pool} pool"}
            return {"ok": f"pool will {verb}"}

        return answer

    def pool_grow(
        self, n: int = 1, destination: Any = None, **kwargs: Any
    ) -> list[dict[str, Any]] | None:
        """Start ``n`` more processes in each prefork worker (threads/solo: not supported)."""
        self._publish("pool_grow", {"n": int(n)}, destination)
        return self._replies(
            self._pool_answer("grow"),
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def pool_shrink(
        self, n: int = 1, destination: Any = None, **kwargs: Any
    ) -> list[dict[str, Any]] | None:
        """Stop ``n`` processes of each prefork worker after their current task."""
        self._publish("pool_shrink", {"n": int(n)}, destination)
        return self._replies(
            self._pool_answer("shrink"),
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def shutdown(self, destination: Any = None, **kwargs: Any) -> list[dict[str, Any]] | None:
        """Stop the workers gracefully (running tasks finish, unstarted ones go back)."""
        answers = self._replies(
            lambda _n: {"ok": "shutting down"},
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )
        self._publish("shutdown", {}, destination)
        return answers

    def heartbeat(self, destination: Any = None, **kwargs: Any) -> list[dict[str, Any]] | None:
        """Make the workers write their heartbeat (what inspect reads) now."""
        self._publish("heartbeat", {}, destination)
        return self._replies(
            lambda _n: {"ok": "heartbeat sent"},
            destination,
            bool(kwargs.get("reply")),
            kwargs.get("limit"),
            kwargs.get("callback"),
        )

    def _unsupported(self, command: str) -> Any:
        raise NotImplementedError(
            f"control {command} is not supported by celery-docket: {UNSUPPORTED_CONTROL[command]}"
        )

    def autoscale(self, max: int, min: int, destination: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        return self._unsupported("autoscale")

    def pool_restart(self, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("pool_restart")

    def enable_events(self, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("enable_events")

    def disable_events(self, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("disable_events")

    def election(self, *args: Any, **kwargs: Any) -> Any:
        return self._unsupported("election")

    # -- generic

    def broadcast(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Any = None,
        connection: Any = None,
        reply: bool = False,
        timeout: float = 1.0,
        limit: int | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        channel: Any = None,
        pattern: str | None = None,
        matcher: str | None = None,
        **extra_kwargs: Any,
    ) -> list[dict[str, Any]] | None:
        """Run ``command`` by name; replies (``reply=True``) come as ``[{node: reply}]``."""
        args = dict(arguments or {}, **extra_kwargs)
        if command in UNSUPPORTED_CONTROL:
            return self._unsupported(command)
        if command in UNSUPPORTED_INSPECT:
            return Inspect(app=self.app)._unsupported(command)
        if command in INSPECT_COMMANDS:
            insp = Inspect(destination, timeout, None, None, self.app, limit, pattern, matcher)
            by_node = insp._request(command, **args) or {}
            out = [{n: v} for n, v in by_node.items()]
            if callback is not None:
                for one in out:
                    callback(one)
            return out if reply else None
        common: dict[str, Any] = {"reply": reply, "limit": limit, "callback": callback}
        if command == "revoke":
            return self.revoke(
                args.pop("task_id"),
                destination=destination,
                terminate=bool(args.pop("terminate", False)),
                signal=args.pop("signal", None) or "SIGTERM",
                pattern=pattern,
                matcher=matcher,
                **common,
            )
        if command == "terminate":
            return self.revoke(
                args.pop("task_id"),
                destination=destination,
                terminate=True,
                signal=args.pop("signal", None) or "SIGTERM",
                **common,
            )
        if command == "time_limit":
            return self.time_limit(
                args["task_name"], args.get("soft"), args.get("hard"), destination, **common
            )
        if command == "rate_limit":
            return self.rate_limit(args["task_name"], args.get("rate_limit"), destination, **common)
        if command == "add_consumer":
            return self.add_consumer(args["queue"], destination=destination, **common)
        if command == "cancel_consumer":
            return self.cancel_consumer(args["queue"], destination=destination, **common)
        if command in ("pool_grow", "pool_shrink"):
            method = self.pool_grow if command == "pool_grow" else self.pool_shrink
            return method(int(args.get("n", 1)), destination=destination, **common)
        if command == "shutdown":
            return self.shutdown(destination=destination, **common)
        if command == "heartbeat":
            return self.heartbeat(destination=destination, **common)
        raise NotImplementedError(f"celery-docket has no remote control command {command!r}")
