"""The native, docket-style API: ``@docket.task``, ``docket.add(fn, when=, key=)(*args)``.

``Docket`` is a ``Client`` (the producer side, in ``client.py``) that also keeps a registry of
plain functions and builds workers and prefork pools for them. It sits above the worker
modules, which depend on ``Client`` only: nothing in the engine imports back into this module.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from .client import DEFAULT_MAX_PAYLOAD, Client, translate_redis_errors, unreachable
from .clock import When
from .hooks import Hook
from .messages import DEFAULT_QUEUE, Call, Execution
from .native import Perpetual, Registry, decode_result, encode_call, make_handler
from .prefork import Supervisor
from .worker import PerpetualSpec, Worker, WorkerSettings


class Docket(Client):
    """A client of one engine namespace (``prefix``) on one Redis, with the native API.

    Thread-safe: it holds only a connection pool, registered scripts and the registry.
    """

    _registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry()
        return self._registry

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        perpetual: Perpetual | None = None,
    ) -> Any:
        """Register a function (usable as ``@docket.task`` or ``@docket.task(queue=...)``)."""

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self.registry.register(f, name=name, queue=queue, perpetual=perpetual)
            return f

        return register(fn) if fn is not None else register

    def add(
        self,
        fn: Callable[..., Any] | str,
        when: When = None,
        key: str | None = None,
        *,
        queue: str | None = None,
        replace: bool = False,
    ) -> Callable[..., Execution]:
        """``docket.add(fn, when=..., key=...)(*args, **kwargs)`` schedules one call."""
        entry = self.registry.resolve(fn)
        perpetual = entry.perpetual is not None

        def schedule(*args: Any, **kwargs: Any) -> Execution:
            body = encode_call(args, kwargs, self.content_type)
            the_key = key
            if perpetual and the_key is None:
                assert entry.perpetual is not None
                the_key = entry.perpetual.key or entry.name
            return self.enqueue(
                Call(
                    entry.name,
                    body,
                    queue=queue or entry.queue,
                    when=when,
                    key=the_key,
                    replace=replace,
                    perpetual=perpetual,
                )
            )

        return schedule

    def result(self, execution_id: str, timeout: float | None = None) -> Any:
        """Wait for a native execution's value; raises TaskFailed or ResultTimeout."""
        return decode_result(self.results.wait(execution_id, timeout))

    def worker(self, **settings: Any) -> Worker:
        """A worker for the registered functions (automatic perpetuals are re-asserted)."""

        queues = settings.pop("queues", None) or sorted(
            {e.queue for e in self.registry.functions.values()} or {DEFAULT_QUEUE}
        )
        handler = make_handler(self.registry, self.results.key, accept=self.accept)
        perpetuals = [
            PerpetualSpec(
                e.perpetual.key or e.name,
                e.name,
                encode_call((), {}, self.content_type),
                queue=e.queue,
            )
            for e in self.registry.functions.values()
            if e.perpetual is not None and e.perpetual.automatic
        ]
        return Worker(
            self, handler, WorkerSettings(queues=queues, **settings), perpetuals=perpetuals
        )

    def prefork(
        self, processes: int, *, time_limit: float | None = None, **settings: Any
    ) -> Supervisor:
        """A prefork pool of ``processes`` solo children for the registered functions."""

        if self.backend.is_memory:
            raise ValueError("memory:// lives in one process; use pool='threads' or 'solo'")
        node = settings.pop("name", None) or f"docket@{socket.gethostname()}"

        def make_worker(slot: int, slot_hook: Hook) -> Worker:
            worker = self.worker(pool="solo", name=f"{node}-{slot}", **settings)
            worker.hooks.add(slot_hook)
            return worker

        return Supervisor(
            make_worker,
            processes,
            make_docket=lambda: Docket(self.url, prefix=self.prefix, backend=self.backend.reopen()),
            time_limit=lambda _d: time_limit,
            lease_seconds=float(settings.get("lease_seconds", 30.0)),
        )


__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_QUEUE",
    "Call",
    "Client",
    "Docket",
    "translate_redis_errors",
    "unreachable",
]
