"""Celery commands celery-docket does not have: each answers with what to use instead.

A bare "No such command" sends people searching; one line naming the replacement does not.
The commands are hidden from ``--help`` and exit with status 1.
"""

from __future__ import annotations

import click

__all__ = ("HINTS", "hint_commands")

HINTS: dict[str, str] = {
    "multi": (
        "celery-docket has no `multi`: run one `celery-docket worker` per node under a "
        "process manager; docs/operations.md has a systemd unit (a template for several)."
    ),
    "events": (
        "celery-docket emits no task events: `celery-docket info` and "
        "`celery-docket inspect active` show live state from Redis."
    ),
    "flower": (
        "Flower is not part of celery-docket; it has no live events to show here. Use "
        "`celery-docket info`, `status` and `inspect` (answered from Redis)."
    ),
    "upgrade": (
        "Nothing to upgrade: old (CELERY_*/uppercase) setting names are read as they are. "
        "For imports, use `celery-docket migrate-code`."
    ),
    "graph": (
        "celery-docket has no `graph`: `celery-docket info` shows queues and workers, "
        "`inspect stats` each worker."
    ),
    "list": (
        "There are no AMQP bindings to list: queues are Redis streams; "
        "`celery-docket info` lists them with their counts."
    ),
    "amqp": (
        "celery-docket has no AMQP shell: queues are Redis streams; use `celery-docket info`, "
        "`purge` and `dead`."
    ),
    "logtool": "celery-docket has no `logtool`: the worker logs Celery's line format; use grep.",
}


def _make(name: str, message: str) -> click.Command:
    def callback() -> None:
        raise click.ClickException(message)

    return click.Command(
        name,
        callback=callback,
        hidden=True,
        help=message,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


def hint_commands() -> list[click.Command]:
    return [_make(name, message) for name, message in HINTS.items()]
