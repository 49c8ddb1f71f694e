"""Parameter types and option blocks shared by the commands.

Celery's flags take values click has no type for (``-Q a,b``, ``-c auto``, ``--autoscale
10,3``, JSON arguments, dates); each is one ``ParamType`` here, and option blocks used by more
than one command (the remote-control ones, the process ones of ``worker`` and ``beat``) are
defined once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

__all__ = (
    "LOG_LEVELS",
    "POOLS",
    "UNSUPPORTED_POOLS",
    "Autoscale",
    "CommaList",
    "Concurrency",
    "IsoDateTime",
    "JsonValue",
    "PoolChoice",
    "SecondsOrDateTime",
    "loglevel_option",
    "process_options",
    "remote_options",
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL")
POOLS = ("prefork", "processes", "threads", "solo")
#: not listed in --help, but let through to the command, which refuses them with advice
UNSUPPORTED_POOLS = ("gevent", "eventlet", "custom")


class PoolChoice(click.Choice):  # type: ignore[type-arg]
    """The pools we run, for --help; gevent/eventlet/custom reach the command's advice."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.lower() in UNSUPPORTED_POOLS:
            return value.lower()
        return super().convert(value, param, ctx)


class CommaList(click.ParamType):  # type: ignore[type-arg]
    """``a,b , c`` -> ``['a', 'b', 'c']``."""

    name = "COMMA SEPARATED LIST"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list | tuple):
            return list(value)
        return [item.strip() for item in str(value).split(",") if item.strip()]


class Concurrency(click.ParamType):  # type: ignore[type-arg]
    """A positive integer, or ``auto`` for the default."""

    name = "concurrency"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int):
            return value
        if str(value).lower() == "auto":
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a number or 'auto'", param, ctx)
        if number < 1:
            self.fail("must be at least 1", param, ctx)
        return number


class Autoscale(click.ParamType):  # type: ignore[type-arg]
    """``MAX,MIN`` (or just ``MAX``)."""

    name = "<MAX WORKERS>,<MIN WORKERS>"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, tuple):
            return value
        try:
            numbers = [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            self.fail(f"{value!r} is not 'MAX,MIN'", param, ctx)
        if not 1 <= len(numbers) <= 2:
            self.fail(f"{value!r} is not 'MAX,MIN'", param, ctx)
        return tuple(numbers)


class JsonValue(click.ParamType):  # type: ignore[type-arg]
    """A JSON document of one expected type (list for ``--args``, dict for ``--kwargs``)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = "JSON_ARRAY" if kind is list else "JSON_OBJECT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.kind):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"{value!r} is not valid JSON: {exc}", param, ctx)
        if not isinstance(parsed, self.kind):
            self.fail(f"{value!r} is not a {self.name}", param, ctx)
        return parsed


class IsoDateTime(click.ParamType):  # type: ignore[type-arg]
    name = "ISO-8601"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date and time", param, ctx)


class SecondsOrDateTime(click.ParamType):  # type: ignore[type-arg]
    name = "ISO-8601 / FLOAT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, float | int | datetime):
            return value
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither seconds nor an ISO 8601 date and time", param, ctx)


REMOTE_OPTIONS = [
    click.option(
        "-t",
        "--timeout",
        type=float,
        default=1.0,
        help="Accepted; answers come from Redis at once.",
    ),
    click.option("-d", "--destination", type=CommaList(), help="Comma separated node names."),
    click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON."),
]


def remote_options(fn: Any) -> Any:
    for option in reversed(REMOTE_OPTIONS):
        fn = option(fn)
    return fn


def loglevel_option(help: str | None = None) -> Callable[[Any], Any]:  # noqa: A002
    """``-l/--loglevel`` as ``worker`` and ``beat`` take it (default WARNING)."""
    return click.option(
        "-l",
        "--loglevel",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        default="WARNING",
        show_default=True,
        help=help,
    )


def process_options(uid_help: str, gid_help: str) -> Callable[[Any], Any]:
    """``-f --pidfile --uid --gid --umask --executable``, as ``worker`` and ``beat`` take them."""
    options = [
        click.option("-f", "--logfile", help="Log destination; defaults to stderr."),
        click.option("--pidfile", help="PID file path."),
        click.option("--uid", help=uid_help),
        click.option("--gid", help=gid_help),
        click.option("--umask", help="Accepted."),
        click.option("--executable", help="Accepted."),
    ]

    def apply(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply
