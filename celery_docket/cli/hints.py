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
        "celery-docket has no `events` monitor: `celery-docket top` is the live view. Workers "
        "started with -E publish Celery's events, so real Celery's `celery -b <broker> events` "
        "shows them."
    ),
    "flower": (
        "Flower is not part of celery-docket: run it with real Celery, "
        "`celery --broker=<the same Redis> flower`, and start workers with -E "
        "(docs/observability.md). `celery-docket top` is the live view in a terminal."
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
