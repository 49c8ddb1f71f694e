"""Every command written in ``celery_docket/cli/`` is registered on the group, once.

Commands live one module each and ``cli/main.py`` lists them in ``COMMANDS``; a command
module added without its line there would silently not exist.
"""

from __future__ import annotations

import importlib
import pathlib

import click

from celery_docket.cli import main

CLI = pathlib.Path(main.__file__).parent


def _home(command: click.Command) -> str:
    """The module whose function the command wraps."""
    return str(getattr(command.callback, "__module__", ""))


def defined_commands() -> dict[str, click.Command]:
    """Module-level click commands of the cli package, by ``module:name``."""
    found: dict[str, click.Command] = {}
    for path in sorted(CLI.glob("*.py")):
        if path.stem in ("__init__", "main"):
            continue
        module = importlib.import_module(f"celery_docket.cli.{path.stem}")
        for name, value in vars(module).items():
            if isinstance(value, click.Command) and _home(value) == module.__name__:
                found[f"{path.stem}:{name}"] = value
    return found


def _reachable(group: click.Group) -> list[click.Command]:
    out: list[click.Command] = []
    for command in group.commands.values():
        out.append(command)
        if isinstance(command, click.Group):
            out += _reachable(command)
    return out


def test_every_command_module_is_registered() -> None:
    defined = defined_commands()
    assert {"worker:worker", "remote:inspect", "dead:dead", "beat:beat"} <= set(defined)
    registered = list(_reachable(main.celery))
    missing = [where for where, cmd in defined.items() if cmd not in registered]
    assert missing == []
    assert len(main.COMMANDS) == len(set(main.COMMANDS)) == len(main.celery.commands)


def test_main_keeps_only_the_group() -> None:
    own = [
        name
        for name, value in vars(main).items()
        if isinstance(value, click.Command) and _home(value) == main.__name__
    ]
    assert own == ["celery"]
