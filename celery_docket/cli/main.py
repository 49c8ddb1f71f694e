"""The ``celery-docket`` command: Celery's command line for celery_docket apps.

This module builds the group (the global options ``-A -b --config --workdir ...``) and
registers the commands, each in a module of its own; helpers they share are in ``loader``
(finding the app), ``options`` (parameter types, shared option blocks), ``broker`` (reaching
the broker) and ``output`` (how replies and tables are printed). Global options and the
``worker``, ``call``, ``result`` and ``beat`` commands take the same flags as ``celery``.
Every failure a user can cause (an app that will not import, a broker that refuses
connections, a pool we do not have) ends in a single ``Error: ...`` line and a non-zero exit
status, never a traceback.

To add a command: write it in its own module as a ``click.Command`` and add one line to
``COMMANDS`` below.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..utils.nodenames import default_nodename, host_format
from .beat import beat
from .broker import connection_errors, one_line, safe_url
from .call import call
from .dead import dead
from .hints import hint_commands
from .info import info, report
from .loader import CLIContext, find_app, load_app
from .migrate import migrate
from .migrate_code import migrate_code
from .purge import purge
from .remote import control, inspect, status
from .result import result
from .shell import shell
from .top import top
from .worker import worker

__all__ = (
    "COMMANDS",
    "CLIContext",
    "celery",
    "default_nodename",
    "find_app",
    "host_format",
    "load_app",
    "main",
    "safe_url",
)

EX_OK = 0
EX_FAILURE = 1


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("celery-docket")
    except Exception:  # noqa: BLE001  # pragma: no cover - not installed
        return "unknown"


def _chdir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        try:
            os.chdir(value)
        except OSError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-A", "--app", "app", envvar="CELERY_APP", type=click.UNPROCESSED, help="The app.")
@click.option("-b", "--broker", envvar="CELERY_BROKER_URL", help="Broker URL.")
@click.option("--result-backend", envvar="CELERY_RESULT_BACKEND", help="Result backend URL.")
@click.option("--loader", envvar="CELERY_LOADER", help="Accepted for compatibility.")
@click.option("--config", envvar="CELERY_CONFIG_MODULE", help="Configuration module.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    callback=_chdir,
    is_eager=True,
    help="Change to this directory first.",
)
@click.option("-C", "--no-color", is_flag=True, envvar="NO_COLOR", help="No colors.")
@click.option("-q", "--quiet", is_flag=True, help="Print less.")
@click.option("--version", is_flag=True, help="Print the version and exit.")
@click.option("--skip-checks", is_flag=True, envvar="SKIP_CHECKS", help="Accepted; no effect.")
@click.pass_context
def celery(
    ctx: click.Context,
    app: Any,
    broker: str | None,
    result_backend: str | None,
    loader: str | None,
    config: str | None,
    workdir: Path | None,
    no_color: bool,
    quiet: bool,
    version: bool,
    skip_checks: bool,
) -> None:
    """celery-docket: Celery's command line on a Redis-streams engine."""
    if version:
        click.echo(f"celery-docket {_version()}")
        ctx.exit()
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit()
    # Like Celery, the global options reach the app through the environment, so an app
    # module that reads them at import time sees them too.
    if loader:
        os.environ["CELERY_LOADER"] = loader
    if broker:
        os.environ["CELERY_BROKER_URL"] = broker
    if result_backend:
        os.environ["CELERY_RESULT_BACKEND"] = result_backend
    if config:
        os.environ["CELERY_CONFIG_MODULE"] = config
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    ctx.obj = CLIContext(
        app,
        config=config,
        no_color=no_color,
        quiet=quiet,
        workdir=str(workdir) if workdir else None,
    )


COMMANDS: tuple[click.Command, ...] = (
    worker,
    beat,
    call,
    result,
    status,
    inspect,
    control,
    purge,
    report,
    info,
    dead,
    migrate,
    migrate_code,
    shell,
    top,
    *hint_commands(),
)
"""Every command of the group, one line each (hidden hints for Celery commands we lack)."""

for _command in COMMANDS:
    celery.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status.

    Anything that escapes a command is reported on one line; set ``CELERY_DOCKET_DEBUG=1``
    to get the traceback instead.
    """
    try:
        celery.main(args=list(argv) if argv is not None else None, prog_name="celery-docket")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return EX_OK
        if isinstance(code, int):
            return code
        click.echo(str(code), err=True)
        return EX_FAILURE
    except Exception as exc:
        if os.environ.get("CELERY_DOCKET_DEBUG"):
            raise
        if isinstance(exc, connection_errors()):
            message = f"Cannot connect to the broker: {one_line(exc)}"
        else:
            message = f"{type(exc).__name__}: {one_line(exc)}"
        click.echo(f"Error: {message} (CELERY_DOCKET_DEBUG=1 shows the traceback)", err=True)
        return EX_FAILURE
    return EX_OK


if __name__ == "__main__":  # pragma: no cover - ``python -m celery_docket.cli.main``
    sys.exit(main())
