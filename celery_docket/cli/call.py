"""``celery-docket call``: send a task by name and print its id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from .broker import broker_errors, broker_url, connection_errors, one_line, refuse_memory
from .loader import get_context
from .options import IsoDateTime, JsonValue, SecondsOrDateTime

__all__ = ("call",)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name")
@click.option("-a", "--args", "args", type=JsonValue(list), default="[]", help="Positional args.")
@click.option("-k", "--kwargs", "kwargs", type=JsonValue(dict), default="{}", help="Keyword args.")
@click.option("--eta", type=IsoDateTime(), help="When to run, ISO 8601.")
@click.option("--countdown", type=float, help="Seconds to wait before running.")
@click.option("--expires", type=SecondsOrDateTime(), help="Seconds or ISO 8601 date.")
@click.option("--serializer", default="json", show_default=True, help="Serializer.")
@click.option("--queue", help="Custom queue name.")
@click.option("--exchange", help="Custom exchange name (accepted).")
@click.option("--routing-key", help="Custom routing key (accepted).")
@click.pass_context
def call(
    ctx: click.Context,
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    eta: datetime | None,
    countdown: float | None,
    expires: float | datetime | None,
    serializer: str,
    queue: str | None,
    exchange: str | None,
    routing_key: str | None,
) -> None:
    """Call a task by name and print its id."""
    obj = get_context(ctx)
    app = obj.app
    options: dict[str, Any] = {
        "countdown": countdown,
        "eta": eta,
        "expires": expires,
        "queue": queue,
        "exchange": exchange,
        "routing_key": routing_key,
    }
    if serializer and serializer != "json":
        options["serializer"] = serializer
    options = {k: v for k, v in options.items() if v is not None}
    url = broker_url(app)
    refuse_memory(url, "call")
    with broker_errors(url):
        try:
            result = app.send_task(name, args=args, kwargs=kwargs, **options)
        except click.ClickException:
            raise
        except connection_errors():
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to send is shown as one CLI error
            raise click.ClickException(
                f"Cannot send {name}: {type(exc).__name__}: {one_line(exc)}"
            ) from None
    obj.echo(result.id)
