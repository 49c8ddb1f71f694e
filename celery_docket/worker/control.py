"""Remote-control command registration (``celery.worker.control``).

Apps register their own commands with :func:`control_command` and :func:`inspect_command`,
as with Celery; they are kept in :class:`Panel`. Our workers answer control and inspect from
Redis, not from a per-worker mailbox, so a custom command registered here is listed but is
not run remotely: broadcasting one raises ``NotImplementedError`` naming it. The queue
operations :func:`add_consumer` and :func:`cancel_consumer` are reached through
``app.control`` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = (
    "Panel",
    "add_consumer",
    "cancel_consumer",
    "control_command",
    "inspect_command",
)


@dataclass
class ControlCommand:
    """What Celery keeps about a registered command."""

    name: str
    type: str
    visible: bool = True
    args: list[tuple[str, Any]] = field(default_factory=list)
    signature: str | None = None
    variadic: str | None = None
    help: str | None = None


class Panel:
    """The registry of control and inspect commands an app's code declared."""

    data: dict[str, Callable[..., Any]] = {}
    meta: dict[str, ControlCommand] = {}

    @classmethod
    def register(
        cls,
        *args: Any,
        type: str = "control",  # noqa: A002 - Celery's argument name
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(fun: Callable[..., Any]) -> Callable[..., Any]:
            name = kwargs.get("name") or fun.__name__
            cls.data[name] = fun
            cls.meta[name] = ControlCommand(
                name=name,
                type=type,
                visible=bool(kwargs.get("visible", True)),
                args=list(kwargs.get("args") or []),
                signature=kwargs.get("signature"),
                variadic=kwargs.get("variadic"),
                help=(fun.__doc__ or "").strip() or None,
            )
            return fun

        if args and callable(args[0]):
            return decorate(args[0])
        return decorate


def control_command(*args: Any, **kwargs: Any) -> Any:
    """Register a control command (``@control_command`` or ``@control_command(...)``)."""
    return Panel.register(*args, type="control", **kwargs)


def inspect_command(*args: Any, **kwargs: Any) -> Any:
    """Register an inspect command (``@inspect_command`` or ``@inspect_command(...)``)."""
    return Panel.register(*args, type="inspect", **kwargs)


def _not_in_process(name: str) -> Any:
    def command(state: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{name} runs through app.control.{name}(...): celery_docket workers have no "
            "in-process control panel"
        )

    command.__name__ = name
    return command


add_consumer = _not_in_process("add_consumer")
cancel_consumer = _not_in_process("cancel_consumer")
