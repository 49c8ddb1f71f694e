"""The engine's own docket-style API: register functions, add calls, perpetual tasks, results.

Bodies carry ``[args, kwargs]`` through ``codec``; results are JSON documents
``{"ok": value}`` or ``{"error": {"type", "message"}}``. This is what teams use when they move
beyond the Celery API; the Celery facade brings its own handler and formats instead.
"""

from __future__ import annotations

import inspect
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from . import codec
from .errors import Undeliverable
from .messages import Delivery, Outcome, ResultWrite

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Perpetual:
    """Run again ``every`` after each run ends (success or failure), under one key."""

    every: timedelta
    automatic: bool = True
    key: str | None = None


@dataclass
class Registered:
    function: Callable[..., Any]
    name: str
    queue: str
    perpetual: Perpetual | None = None


class TaskFailed(Exception):
    """A native execution ended in an exception; ``type`` and ``message`` describe it."""

    def __init__(self, type_name: str, message: str, tb: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type = type_name
        self.message = message
        self.traceback = tb


def function_name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


class Registry:
    """Functions known to a worker, by name."""

    def __init__(self) -> None:
        self.functions: dict[str, Registered] = {}

    def register(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        queue: str = "default",
        perpetual: Perpetual | None = None,
    ) -> Registered:
        entry = Registered(fn, name or function_name(fn), queue, perpetual)
        self.functions[entry.name] = entry
        return entry

    def resolve(self, fn: Callable[..., Any] | str) -> Registered:
        name = fn if isinstance(fn, str) else function_name(fn)
        entry = self.functions.get(name)
        if entry is None:
            if isinstance(fn, str):  # send by name: the producer need not have the code
                return Registered(_not_here, name, "default")
            entry = self.register(fn)
        return entry


def _not_here(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("this function is only known to the workers")


def encode_call(args: tuple[Any, ...], kwargs: dict[str, Any], content_type: str) -> bytes:
    return codec.encode([list(args), kwargs], content_type)


def make_handler(
    registry: Registry,
    result_key: Callable[[str], str],
    *,
    accept: frozenset[str] = frozenset({codec.JSON}),
    result_ttl_ms: int = DAY_MS,
    clock: Callable[[], float] = time.time,
) -> Callable[[Delivery], Any]:
    """Build the worker handler: decode, bind, call, encode the outcome."""

    def prepare(d: Delivery) -> tuple[Registered, list[Any], dict[str, Any]]:
        entry = registry.functions.get(d.function)
        if entry is None:
            raise Undeliverable(f"unknown function {d.function!r}")
        payload = codec.decode(d.body, accept)
        if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[1], dict)):
            raise Undeliverable("body is not [args, kwargs]")
        args, kwargs = payload
        try:
            inspect.signature(entry.function).bind(*args, **kwargs)
        except TypeError as exc:
            raise Undeliverable(f"arguments do not fit {d.function}: {exc}") from exc
        return entry, args, kwargs

    def finish(d: Delivery, entry: Registered, doc: dict[str, Any]) -> Outcome:
        write = ResultWrite(result_key(d.execution_id), json.dumps(doc).encode(), result_ttl_ms)
        if entry.perpetual is not None and d.keyed:
            when = int((clock() + entry.perpetual.every.total_seconds()) * 1000)
            return Outcome.again(when, attempt=1, result=write)
        return Outcome.done(write)

    def failure_doc(exc: BaseException) -> dict[str, Any]:
        return {
            "error": {
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(),
            }
        }

    def handle(d: Delivery) -> Any:
        entry, args, kwargs = prepare(d)
        if d.fate is not None:  # a supervisor killed the previous runner: report, do not rerun
            killed = {"error": {"type": "TimeLimitExceeded", "message": d.fate, "traceback": ""}}
            return finish(d, entry, killed)
        if inspect.iscoroutinefunction(entry.function):

            async def run_async() -> Outcome:
                try:
                    value = await entry.function(*args, **kwargs)
                    return finish(d, entry, {"ok": value})
                except Exception as exc:  # noqa: BLE001 - the user's function raised: that is its failure, recorded
                    return finish(d, entry, failure_doc(exc))

            return run_async()
        try:
            value = entry.function(*args, **kwargs)
            doc: dict[str, Any] = {"ok": value}
            json.dumps(doc)
        except Exception as exc:  # noqa: BLE001 - the user's function raised: that is its failure, recorded
            doc = failure_doc(exc)
        return finish(d, entry, doc)

    return handle


def decode_result(raw: bytes) -> Any:
    doc = json.loads(raw)
    if "error" in doc:
        err = doc["error"]
        raise TaskFailed(err["type"], err["message"], err.get("traceback", ""))
    return doc["ok"]
