"""``celery-docket status``, ``inspect`` and ``control``: Celery's remote-control commands.

The answers come from Redis at once (``celery_docket/control/``), laid out as ``celery
inspect`` prints them. Positional arguments after the command name are parsed per command,
as Celery does, and ``--list`` shows what is and is not supported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from .broker import broker_errors, broker_url, remote_app
from .loader import get_context
from .options import remote_options
from .output import NoNodes, plural, reply_printer

__all__ = ("control", "inspect", "status")


# name -> (positional (name, type) pairs, variadic name or None)
_INSPECT_ARGS: dict[str, tuple[list[tuple[str, Any]], str | None]] = {
    "query_task": ([], "ids"),
    "registered": ([], "taskinfoitems"),
}
_CONTROL_ARGS: dict[str, tuple[list[tuple[str, Any]], str | None]] = {
    "revoke": ([], "task_id"),
    "terminate": ([("signal", str)], "task_id"),
    "time_limit": ([("task_name", str), ("soft", float), ("hard", float)], None),
    "rate_limit": ([("task_name", str), ("rate_limit", str)], None),
    "add_consumer": (
        [("queue", str), ("exchange", str), ("exchange_type", str), ("routing_key", str)],
        None,
    ),
    "cancel_consumer": ([("queue", str)], None),
    "pool_grow": ([("n", int)], None),
    "pool_shrink": ([("n", int)], None),
    "autoscale": ([("max", int), ("min", int)], None),
}
_HELP = {
    "active": "Tasks running now.",
    "active_queues": "Queues each worker consumes.",
    "ping": "Ping the workers.",
    "query_task": "Where tasks stand, by id: active, reserved or scheduled.",
    "registered": "Registered tasks (optionally with some attributes).",
    "report": "Versions and settings for bug reports.",
    "reserved": "Tasks delivered to a worker and not started yet.",
    "revoked": "Revoked task ids (kept in Redis).",
    "scheduled": "Tasks waiting for their ETA/countdown.",
    "stats": "Worker statistics.",
    "add_consumer": "Consume one more queue.",
    "cancel_consumer": "Stop consuming a queue.",
    "heartbeat": "Refresh the heartbeats now.",
    "pool_grow": "Start N more prefork processes.",
    "pool_shrink": "Stop N prefork processes after their task.",
    "revoke": "Revoke tasks by id.",
    "shutdown": "Stop the workers gracefully.",
    "terminate": "Revoke tasks by id and stop them where they run.",
    "time_limit": "Set a task's soft and hard time limits.",
}


_SIGNATURES = {
    "query_task": "ID [ID ...]",
    "registered": "[ATTR ...]",
    "revoke": "ID [ID ...]",
    "terminate": "SIGNAL ID [ID ...]",
    "time_limit": "TASK_NAME SOFT_SECS [HARD_SECS]",
    "add_consumer": "QUEUE",
    "cancel_consumer": "QUEUE",
    "pool_grow": "[N=1]",
    "pool_shrink": "[N=1]",
}


def _compile(command: str, args: list[str], table: dict[str, Any]) -> dict[str, Any]:
    positional, variadic = table.get(command, ([], None))
    values = list(args)
    out: dict[str, Any] = {}
    for name, kind in positional:
        if not values:
            break
        raw = values.pop(0)
        try:
            out[name] = kind(raw)
        except ValueError:
            raise click.UsageError(
                f"{command}: {name} must be a {kind.__name__}, not {raw!r}"
            ) from None
    if variadic:
        out[variadic] = values
    elif values:
        names = " ".join(f"<{n}>" for n, _ in positional) or "no arguments"
        raise click.UsageError(f"{command} takes {names}")
    return out


def _list_commands(kind: str) -> Callable[[Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if not value:
            return
        from celery_docket.control import (
            CONTROL_COMMANDS,
            INSPECT_COMMANDS,
            UNSUPPORTED_CONTROL,
            UNSUPPORTED_INSPECT,
        )

        names, missing = (
            (INSPECT_COMMANDS, UNSUPPORTED_INSPECT)
            if kind == "inspect"
            else (CONTROL_COMMANDS, UNSUPPORTED_CONTROL)
        )
        formatter = click.HelpFormatter()
        with formatter.section(f"{kind.capitalize()} commands"):
            formatter.write_dl(
                [(f"{n} {_SIGNATURES.get(n, '')}".strip(), _HELP.get(n, "")) for n in names]
            )
        with formatter.section("Not supported by celery-docket"):
            formatter.write_dl(sorted(missing.items()))
        click.echo(formatter.getvalue(), nl=False)
        ctx.exit()

    return click.option(
        "--list",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=callback,
        help=f"List the {kind} commands and exit.",
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@remote_options
@click.pass_context
def status(
    ctx: click.Context, timeout: float, destination: list[str] | None, as_json: bool
) -> None:
    """List the workers that are alive (exit status 69 when none is)."""
    obj = get_context(ctx)
    app = remote_app(obj)
    with broker_errors(broker_url(app)):
        callback = None if as_json else reply_printer(obj, False)
        replies = app.control.inspect(destination=destination, callback=callback).ping()
    if not replies:
        raise NoNodes()
    if as_json:
        obj.echo(json.dumps(replies))
    if not obj.quiet:
        obj.echo(f"\n{plural(len(replies), 'node')} online.")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "allow_extra_args": True})
@click.argument("command")
@_list_commands("inspect")
@remote_options
@click.pass_context
def inspect(
    ctx: click.Context,
    command: str,
    timeout: float,
    destination: list[str] | None,
    as_json: bool,
) -> None:
    """Ask the workers: COMMAND is ping, active, reserved, scheduled, stats, registered,
    revoked, active_queues, query_task or report (answered from Redis at once)."""
    from celery_docket.control import INSPECT_COMMANDS, UNSUPPORTED_INSPECT

    if command not in INSPECT_COMMANDS and command not in UNSUPPORTED_INSPECT:
        raise click.UsageError(
            f"Unknown inspect command {command!r}. Known: {', '.join(INSPECT_COMMANDS)}"
        )
    obj = get_context(ctx)
    arguments = _compile(command, list(ctx.args), _INSPECT_ARGS)
    app = remote_app(obj)
    with broker_errors(broker_url(app)):
        callback = None if as_json else reply_printer(obj, True)
        try:
            replies = app.control.inspect(destination=destination, callback=callback)._request(
                command, **arguments
            )
        except NotImplementedError as exc:
            raise click.ClickException(str(exc)) from None
    if not replies:
        raise NoNodes()
    if as_json:
        obj.echo(json.dumps(replies, default=str))
        return
    if not obj.quiet:
        obj.echo(f"\n{plural(len(replies), 'node')} online.")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "allow_extra_args": True})
@click.argument("command")
@_list_commands("control")
@remote_options
@click.pass_context
def control(
    ctx: click.Context,
    command: str,
    timeout: float,
    destination: list[str] | None,
    as_json: bool,
) -> None:
    """Tell the workers: COMMAND is revoke, terminate, time_limit, rate_limit, add_consumer,
    cancel_consumer, pool_grow, pool_shrink, heartbeat or shutdown."""
    from celery_docket.control import CONTROL_COMMANDS, UNSUPPORTED_CONTROL

    if command not in CONTROL_COMMANDS and command not in UNSUPPORTED_CONTROL:
        raise click.UsageError(
            f"Unknown control command {command!r}. Known: {', '.join(CONTROL_COMMANDS)}"
        )
    obj = get_context(ctx)
    arguments = _compile(command, list(ctx.args), _CONTROL_ARGS)
    if command in ("revoke", "terminate") and not arguments.get("task_id"):
        raise click.UsageError(f"{command} needs at least one task id")
    if command == "time_limit" and "task_name" not in arguments:
        raise click.UsageError("time_limit takes <task_name> <soft_secs> [hard_secs]")
    if command in ("add_consumer", "cancel_consumer") and "queue" not in arguments:
        raise click.UsageError(f"{command} takes <queue>")
    app = remote_app(obj)
    with broker_errors(broker_url(app)):
        callback = None if as_json else reply_printer(obj, True)
        try:
            replies = app.control.broadcast(
                command,
                arguments=arguments,
                destination=destination,
                reply=True,
                timeout=timeout,
                callback=callback,
            )
        except NotImplementedError as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if not replies:
        raise NoNodes()
    if as_json:
        obj.echo(json.dumps(replies, default=str))
