"""Helpers for testing celery_docket apps (Celery's ``celery.contrib.testing``).

:func:`TestApp` builds an app configured for tests (``memory://`` broker and results, UTC,
JSON only, no logging takeover); :func:`setup_default_app` makes an app current for a block
and restores the previous current/default app afterwards, optionally behind a :class:`Trap`
that fails any code that silently falls back to the current app. Embedded workers live in
:mod:`celery_docket.contrib.testing.worker`.
"""

from __future__ import annotations

import copy
import types
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = (
    "DEFAULT_TEST_CONFIG",
    "TestApp",
    "Trap",
    "memory_url",
    "set_trap",
    "setup_default_app",
)

#: The configuration every test app starts from (the user's ``celery_config`` wins).
#: ``broker_url`` and ``result_backend`` are filled in per app with a fresh ``memory://``
#: server, so tests never see each other's messages; see :func:`memory_url`.
DEFAULT_TEST_CONFIG: dict[str, Any] = {
    "worker_hijack_root_logger": False,
    "worker_log_color": False,
    "accept_content": {"json"},
    "enable_utc": True,
    "timezone": "UTC",
    "broker_url": "memory://",
    "result_backend": "memory://",
    "broker_heartbeat": 0,
}


def memory_url() -> str:
    """A ``memory://`` URL naming a new, empty in-process server."""
    return f"memory://celery-docket-tests-{uuid.uuid4().hex[:12]}"


class Trap:
    """Stands in for the current app and raises on any use of it.

    Installed by ``use_celery_app_trap``: code that should have been handed an app but
    reached for ``current_app`` instead fails loudly.
    """

    def __getattr__(self, name: str) -> Any:
        # unittest.mock and asyncio probe these; answering keeps patching working.
        if name in ("_is_coroutine", "__func__"):
            return None
        raise RuntimeError(f"Test depends on current_app (it used current_app.{name})")


def TestApp(  # noqa: N802 - Celery's name
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    enable_logging: bool = False,
    set_as_current: bool = False,
    log: Any = None,
    backend: str | None = None,
    broker: str | None = None,
    **kwargs: Any,
) -> Any:
    """An app for a test: :data:`DEFAULT_TEST_CONFIG` overlaid with ``config``.

    The defaults go in as *defaults* (as in Celery), so ``app.conf.update(...)`` and
    ``app.config_from_object(...)`` inside a test still override them. Unless the caller
    names a broker or result backend, both are the same fresh ``memory://`` server; a
    broker given without a result backend keeps the results too.
    ``enable_logging`` and ``log`` are accepted for Celery compatibility.
    """
    from celery_docket import Celery

    merged = dict(copy.deepcopy(DEFAULT_TEST_CONFIG), **dict(config or {}))
    if merged.get("broker_url") == "memory://":
        merged["broker_url"] = memory_url()
    if merged.get("result_backend") == "memory://":
        # Not chosen by the user: results live beside the messages, wherever those go.
        merged["result_backend"] = broker or merged["broker_url"]
    if broker is not None:
        merged.pop("broker_url", None)
    if backend is not None:
        merged.pop("result_backend", None)
    app = Celery(
        name or "celery.tests",
        set_as_current=set_as_current,
        broker=broker,
        backend=backend,
        **kwargs,
    )
    # Old (``CELERY_ALWAYS_EAGER``) and new names both land on the setting they mean.
    canonical = getattr(app.conf, "_canonical", str)
    add_defaults = getattr(app, "add_defaults", None) or app.conf.add_defaults
    add_defaults({canonical(key): value for key, value in merged.items()})
    from .worker import _pong

    app.task(name="celery.ping", shared=False)(_pong)  # as Celery's test app has it
    return app


def _state() -> Any:
    try:
        from celery_docket import _state as state
    except ImportError:  # pragma: no cover - part of the package
        return None
    return state


@contextmanager
def set_trap(app: Any) -> Iterator[None]:
    """Within the block, the current and default app are a :class:`Trap` in every thread."""
    state = _state()
    if state is None:  # pragma: no cover
        yield
        return
    trap = Trap()
    prev_tls = state._tls
    prev_default = state._default_app
    state.set_default_app(trap)
    state._tls = types.SimpleNamespace(current_app=trap)
    try:
        yield
    finally:
        state._tls = prev_tls
        state.set_default_app(prev_default)


@contextmanager
def setup_default_app(app: Any, use_trap: bool = False) -> Iterator[None]:
    """Run the block with ``app`` available; afterwards put back the previous current and
    default apps, close ``app`` and drop its in-memory server."""
    state = _state()
    prev_default = getattr(state, "_default_app", None)
    prev_current = getattr(getattr(state, "_tls", None), "current_app", None)
    try:
        if use_trap:
            with set_trap(app):
                yield
        else:
            yield
    finally:
        if state is not None:
            state.set_default_app(prev_default)
            state._tls.current_app = prev_current
        if app is not prev_current:
            close_app(app)


def close_app(app: Any) -> None:
    """Close the app's connections and forget the ``memory://`` servers it used."""
    close = getattr(app, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001  # pragma: no cover - closing must not fail a test
            pass
    try:
        from celery_docket.engine import reset_memory
    except ImportError:  # pragma: no cover
        return
    for key in ("broker_url", "result_backend"):
        try:
            url = app.conf.get(key)
        except Exception:  # noqa: BLE001 - a broken config must not fail a test's teardown
            continue
        if isinstance(url, str) and url.startswith("memory://celery-docket-tests-"):
            reset_memory(url[len("memory://") :].strip("/"))
