"""pytest fixtures for celery_docket apps, with the names and behaviour of Celery's plugin.

Enable it with ``pytest_plugins = ("celery_docket.contrib.pytest",)`` in a ``conftest.py``
(or ``-p celery_docket.contrib.pytest``). Then:

``celery_app``
    A fresh app per test, configured by ``celery_config`` (a session fixture you may
    override), built with ``celery_parameters`` and overridden per test by the marker
    ``@pytest.mark.celery(**settings)``. Broker and results default to a ``memory://``
    server of its own, so nothing needs to be installed.
``celery_worker``
    A worker consuming for ``celery_app`` in a thread for the duration of the test (pool
    ``celery_worker_pool``, options ``celery_worker_parameters``; modules in
    ``celery_includes`` are imported first).
``celery_session_app`` / ``celery_session_worker``
    The same, shared by the whole session.
``use_celery_app_trap``
    Return ``True`` to make any use of ``current_app`` inside a test fail.
``celery_enable_logging``, ``celery_class_tasks``, ``depends_on_current_app``
    As in Celery.

Setting the environment variable ``NO_WORKER`` makes the worker fixtures start nothing.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = (
    "celery_app",
    "celery_class_tasks",
    "celery_config",
    "celery_enable_logging",
    "celery_includes",
    "celery_parameters",
    "celery_session_app",
    "celery_session_worker",
    "celery_worker",
    "celery_worker_parameters",
    "celery_worker_pool",
    "depends_on_current_app",
    "use_celery_app_trap",
)

NO_WORKER = os.environ.get("NO_WORKER")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "celery(**overrides): override celery configuration for a test case"
    )


@contextmanager
def _create_app(
    enable_logging: bool = False,
    use_trap: bool = False,
    parameters: Mapping[str, Any] | None = None,
    **config: Any,
) -> Iterator[Any]:
    """Build a test app, keep it for the block, then restore the previous apps."""
    from .testing import TestApp, setup_default_app

    app = TestApp(
        set_as_current=False,
        enable_logging=enable_logging,
        config=config,
        **dict(parameters or {}),
    )
    with setup_default_app(app, use_trap=use_trap):
        yield app


def _config_for(request: pytest.FixtureRequest, celery_config: Mapping[str, Any]) -> dict[str, Any]:
    """``celery_config`` overridden by the closest ``@pytest.mark.celery(...)``."""
    mark = request.node.get_closest_marker("celery")
    return dict(celery_config, **(mark.kwargs if mark else {}))


def _import_includes(app: Any, modules: Sequence[str]) -> None:
    loader = getattr(app, "loader", None)
    import_task_module = getattr(loader, "import_task_module", None)
    for module in modules:
        if import_task_module is not None:
            import_task_module(module)
        else:
            importlib.import_module(module)


@pytest.fixture(scope="session")
def use_celery_app_trap() -> bool:
    """Override to return ``True``: then using the current/default app raises."""
    return False


@pytest.fixture(scope="session")
def celery_enable_logging() -> bool:
    """Override to return ``True`` to let the test app set up logging."""
    return False


@pytest.fixture(scope="session")
def celery_includes() -> Sequence[str]:
    """Override to name modules (tasks, signal handlers...) imported before a worker starts."""
    return ()


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    """Override to choose the test worker's pool (``solo`` by default, or ``threads``)."""
    return "solo"


@pytest.fixture(scope="session")
def celery_config() -> Mapping[str, Any]:
    """Override to configure the test apps (a mapping of setting names to values)."""
    return {}


@pytest.fixture(scope="session")
def celery_parameters() -> Mapping[str, Any]:
    """Override to pass keyword arguments to the test apps' ``Celery(...)``."""
    return {}


@pytest.fixture(scope="session")
def celery_worker_parameters() -> Mapping[str, Any]:
    """Override to pass keyword arguments to the test workers (e.g. ``queues``)."""
    return {}


@pytest.fixture(scope="session")
def celery_class_tasks() -> Sequence[Any]:
    """Override to list class-based tasks to register on the session app."""
    return []


@pytest.fixture(scope="session")
def celery_session_app(
    request: pytest.FixtureRequest,
    celery_config: Mapping[str, Any],
    celery_parameters: Mapping[str, Any],
    celery_enable_logging: bool,
    use_celery_app_trap: bool,
) -> Iterator[Any]:
    """One app for the whole session (current and default unless the trap is on)."""
    config = _config_for(request, celery_config)
    with _create_app(
        enable_logging=celery_enable_logging,
        use_trap=use_celery_app_trap,
        parameters=celery_parameters,
        **config,
    ) as app:
        if not use_celery_app_trap:
            app.set_default()
            app.set_current()
        yield app


@pytest.fixture(scope="session")
def celery_session_worker(
    request: pytest.FixtureRequest,
    celery_session_app: Any,
    celery_includes: Sequence[str],
    celery_class_tasks: Sequence[Any],
    celery_worker_pool: str,
    celery_worker_parameters: Mapping[str, Any],
) -> Iterator[Any]:
    """A worker for ``celery_session_app`` running for the whole session."""
    from .testing import worker

    if NO_WORKER:
        yield None
        return
    _import_includes(celery_session_app, celery_includes)
    for class_task in celery_class_tasks:
        celery_session_app.register_task(class_task)
    with worker.start_worker(
        celery_session_app, pool=celery_worker_pool, **celery_worker_parameters
    ) as w:
        yield w


@pytest.fixture
def celery_app(
    request: pytest.FixtureRequest,
    celery_config: Mapping[str, Any],
    celery_parameters: Mapping[str, Any],
    celery_enable_logging: bool,
    use_celery_app_trap: bool,
) -> Iterator[Any]:
    """A fresh app for this test; the ``celery`` marker overrides its configuration."""
    config = _config_for(request, celery_config)
    with _create_app(
        enable_logging=celery_enable_logging,
        use_trap=use_celery_app_trap,
        parameters=celery_parameters,
        **config,
    ) as app:
        yield app


@pytest.fixture
def celery_worker(
    request: pytest.FixtureRequest,
    celery_app: Any,
    celery_includes: Sequence[str],
    celery_worker_pool: str,
    celery_worker_parameters: Mapping[str, Any],
) -> Iterator[Any]:
    """A worker for ``celery_app`` in a thread, stopped when the test returns."""
    from .testing import worker

    if NO_WORKER:
        yield None
        return
    _import_includes(celery_app, celery_includes)
    with worker.start_worker(celery_app, pool=celery_worker_pool, **celery_worker_parameters) as w:
        yield w


@pytest.fixture
def depends_on_current_app(celery_app: Any) -> None:
    """Make ``celery_app`` the current app for this test."""
    celery_app.set_current()
