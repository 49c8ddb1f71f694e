"""``celery-docket shell``: a Python prompt with the app and its tasks already imported.

As ``celery shell``: ``app`` and ``celery`` are the app, ``Task`` and the canvas primitives
are there, and each task is bound to its function's name (``add.delay(2, 2)``). IPython or
bpython is used when installed, unless ``--python`` asks for the plain prompt.
"""

from __future__ import annotations

import code
from importlib import import_module
from typing import Any

import click

from .loader import get_context
from .worker import task_modules

__all__ = ("namespace", "shell")


def namespace(app: Any, with_tasks: bool = True) -> dict[str, Any]:
    """What the prompt starts with."""
    import celery_docket

    ns: dict[str, Any] = {
        "app": app,
        "celery": app,
        "Task": celery_docket.Task,
        "chord": celery_docket.chord,
        "group": celery_docket.group,
        "chain": celery_docket.chain,
        "chunks": celery_docket.chunks,
        "xmap": celery_docket.xmap,
        "xstarmap": celery_docket.xstarmap,
        "subtask": celery_docket.subtask,
        "signature": celery_docket.signature,
    }
    if with_tasks:
        for module in task_modules(app, []):
            import_module(module)
        app.loader_import_modules()
        for name, task in app.tasks.items():
            if not name.startswith("celery."):
                ns[name.rsplit(".", 1)[-1]] = task
    return ns


def _ipython(ns: dict[str, Any]) -> bool:
    try:
        from IPython import start_ipython
    except ImportError:
        return False
    start_ipython(argv=[], user_ns=ns)
    return True


def _bpython(ns: dict[str, Any]) -> bool:
    try:
        import bpython
    except ImportError:
        return False
    bpython.embed(ns)
    return True


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-I", "--ipython", is_flag=True, help="Use IPython (an error if not installed).")
@click.option("-B", "--bpython", is_flag=True, help="Use bpython (an error if not installed).")
@click.option("--python", "plain", is_flag=True, help="Use the plain Python prompt.")
@click.option("-T", "--without-tasks", is_flag=True, help="Do not put the tasks in the namespace.")
@click.option("--eventlet", is_flag=True, help="Not supported (no eventlet here).")
@click.option("--gevent", is_flag=True, help="Not supported (no gevent here).")
@click.pass_context
def shell(
    ctx: click.Context,
    ipython: bool,
    bpython: bool,
    plain: bool,
    without_tasks: bool,
    eventlet: bool,
    gevent: bool,
) -> None:
    """Start a Python shell with the app, its tasks, Task and the canvas primitives."""
    if eventlet or gevent:
        raise click.ClickException("--eventlet/--gevent are not supported by celery-docket.")
    app = get_context(ctx).app
    ns = namespace(app, with_tasks=not without_tasks)
    if ipython and not _ipython(ns):
        raise click.ClickException("IPython is not installed (pip install ipython).")
    if bpython and not _bpython(ns):
        raise click.ClickException("bpython is not installed (pip install bpython).")
    if ipython or bpython:
        return
    if not plain and (_ipython(ns) or _bpython(ns)):
        return
    names = ", ".join(sorted(k for k in ns if k not in ("app", "celery")))
    code.interact(banner=f"celery-docket shell: app, celery, {names}", local=ns, exitmsg="")
