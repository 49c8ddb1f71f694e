"""``celery-docket result``: wait for a task's result and print it."""

from __future__ import annotations

import click

from .broker import broker_errors, broker_url, connection_errors, one_line, refuse_memory
from .loader import get_context

__all__ = ("result",)


def _is_timeout(exc: BaseException) -> bool:
    return any(cls.__name__ in ("TimeoutError", "ResultTimeout") for cls in type(exc).__mro__)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("task_id")
@click.option("-t", "--task", help="Name of the task (for its custom result class).")
@click.option("--traceback", is_flag=True, help="Print the traceback instead of the result.")
@click.option("--timeout", type=float, help="Seconds to wait; default: wait forever.")
@click.pass_context
def result(
    ctx: click.Context,
    task_id: str,
    task: str | None,
    traceback: bool,
    timeout: float | None,
) -> None:
    """Print the return value of the task with this id (waiting for it)."""
    obj = get_context(ctx)
    app = obj.app
    if task:
        if task not in app.tasks:
            raise click.ClickException(f"Unknown task {task!r}.")
        result_cls = app.tasks[task].AsyncResult
    else:
        result_cls = app.AsyncResult
    res = result_cls(task_id)
    url = broker_url(app)
    refuse_memory(str(app.conf.get("result_backend") or url or ""), "result")
    with broker_errors(url):
        if traceback:
            value = res.traceback
        else:
            try:
                value = res.get(timeout=timeout)
            except click.ClickException:
                raise
            except connection_errors() as exc:
                if _is_timeout(exc):
                    raise click.ClickException(
                        f"No result for {task_id} within {timeout:g} seconds."
                    ) from None
                raise
            except Exception as exc:  # noqa: BLE001 - any other failure is shown as one CLI error
                if _is_timeout(exc):
                    raise click.ClickException(
                        f"No result for {task_id} within {timeout:g} seconds."
                    ) from None
                raise click.ClickException(
                    f"Task {task_id} raised {type(exc).__name__}: {one_line(exc)}"
                ) from None
    obj.echo(value)
