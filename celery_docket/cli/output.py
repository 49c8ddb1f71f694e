"""How commands print: replies laid out as ``celery inspect`` shows them, plain tables,
ages, plurals, and the "no nodes" error with Celery's exit status.

Kept apart from the commands so every command prints the same way and a new command needs no
copy of these.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from .loader import CLIContext

__all__ = (
    "EX_UNAVAILABLE",
    "NoNodes",
    "age",
    "indent",
    "plural",
    "pretty",
    "reply_printer",
    "say_reply",
    "table",
)

EX_UNAVAILABLE = 69
"""Exit status when no worker is alive (the same number Celery uses)."""


class NoNodes(click.ClickException):
    """No worker heartbeat in Redis: exit status 69, like ``celery status``."""

    exit_code = EX_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            "No nodes replied within time constraint (no live worker heartbeat in Redis)"
        )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def indent(text: str, by: int) -> str:
    pad = " " * by
    return "\n".join(pad + line for line in text.splitlines())


def pretty(reply: Any) -> tuple[str, str]:
    """(OK|ERROR, body) of one node's reply, laid out as ``celery inspect`` shows it."""
    if isinstance(reply, list):
        return "OK", ("\n".join(f"* {item}" for item in reply) if reply else "- empty -")
    if isinstance(reply, dict):
        if "ok" in reply:
            return "OK", indent(pretty(reply["ok"])[1], 4)
        if "error" in reply:
            return "ERROR", indent(pretty(reply["error"])[1], 4)
        return "OK", json.dumps(reply, sort_keys=True, indent=4, default=str)
    if isinstance(reply, str):
        return "OK", reply
    from pprint import pformat

    return "OK", pformat(reply)


def say_reply(obj: CLIContext, node: str, reply: Any, show_body: bool) -> None:
    status, body = pretty(reply)
    obj.echo(f"->  {node}: {status}")
    if show_body and body:
        obj.echo(indent(body, 4))


def reply_printer(obj: CLIContext, show_body: bool) -> Callable[[dict[str, Any]], None]:
    """A reply callback printing each ``{node: reply}`` as it comes."""

    def say(one: dict[str, Any]) -> None:
        for node, reply in one.items():
            say_reply(obj, node, reply, show_body)

    return say


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
