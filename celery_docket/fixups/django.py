"""Django under a celery_docket worker: what Celery's Django fix-up does, on our signals.

Django projects rely on Celery's fix-up without knowing it: ``django.setup()`` runs before
the task modules (which import models at module level) are imported, database connections
are closed before and after every task so no task inherits a stale one, and a forked child
drops the connections its parent opened. This module does the same from the app's
constructor when ``DJANGO_SETTINGS_MODULE`` is set, and one more thing: a pool thread that
ends closes the connections it opened (Django keeps them per thread).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from datetime import datetime, timezone
from typing import Any

from .. import signals
from ..exceptions import FixupWarning, ImproperlyConfigured

log = logging.getLogger("celery_docket.fixups.django")

SETTINGS_ENV = "DJANGO_SETTINGS_MODULE"

__all__ = ["DjangoFixup", "DjangoWorkerFixup", "fixup"]


def fixup(app: Any, env: str = SETTINGS_ENV) -> DjangoFixup | None:
    """Install the Django fix-up on ``app`` when ``env`` names a settings module."""
    if not os.environ.get(env):
        return None
    try:
        import django
    except ImportError:
        warnings.warn(
            FixupWarning(f"{env} is set but Django is not installed: no Django fix-up applied"),
            stacklevel=2,
        )
        return None
    if django.VERSION < (4, 2):
        raise ImproperlyConfigured("celery_docket needs Django 4.2 or later")
    return DjangoFixup(app).install()


def _unwrap(obj: Any) -> Any:
    getter = getattr(obj, "_get_current_object", None)
    return getter() if callable(getter) else obj


class DjangoFixup:
    """Set at app construction; the database part waits for the worker (``worker_init``)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._worker_fixup: DjangoWorkerFixup | None = None

    def install(self) -> DjangoFixup:
        # the project directory first, as Celery does, so `proj.settings` imports
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        self.app.loader.now = self.now
        from ..app.task import Task

        if self.app.task_cls is Task:  # an explicit task_cls= wins, as in Celery
            from ..contrib.django.task import DjangoTask

            self.app.task_cls = DjangoTask
        # the app calls on_import_modules itself (a refusal there must stop the start; a
        # signal would only log it); a weak receiver: a fix-up lives as long as its app
        signals.worker_init.connect(self.on_worker_init)
        return self

    @property
    def worker_fixup(self) -> DjangoWorkerFixup:
        if self._worker_fixup is None:
            self._worker_fixup = DjangoWorkerFixup(self.app)
        return self._worker_fixup

    def on_import_modules(self) -> None:
        """Sent before any task module is imported: set Django up (and run its checks),
        then refuse what the Django integrations cannot honour."""
        self.worker_fixup.validate_models()
        from ..contrib.django.results import check_backend

        check_backend(self.app)

    def on_worker_init(self, sender: Any = None, **kwargs: Any) -> None:
        worker_app = _unwrap(getattr(sender, "app", None))
        if worker_app is not None and worker_app is not _unwrap(self.app):
            return  # another app's worker; its own fix-up handles it
        self.worker_fixup.worker = sender
        self.worker_fixup.install()

    def now(self, utc: bool = False) -> datetime:
        if utc:
            return datetime.now(timezone.utc)
        from django.utils.timezone import now

        current: datetime = now()
        return current

    def autodiscover_tasks(self) -> list[str]:
        from django.apps import apps

        return [config.name for config in apps.get_app_configs()]


class _ThreadConnections:
    """Kept in one thread's local storage; when the thread ends its storage is dropped and
    this closes the connections that thread opened (none, if the last task closed them)."""

    def __init__(self) -> None:
        self.wrappers: list[Any] = []

    def add(self, wrapper: Any) -> None:
        if all(w is not wrapper for w in self.wrappers):
            self.wrappers.append(wrapper)

    def close(self) -> None:
        for wrapper in self.wrappers:
            if getattr(wrapper, "connection", None) is None:
                continue
            try:
                wrapper.close()
            except Exception:  # noqa: BLE001 - the thread is ending; drop it however we can
                with contextlib.suppress(Exception):
                    wrapper.connection.close()
                    wrapper.connection = None
        self.wrappers = []

    def __del__(self) -> None:
        self.close()


class DjangoWorkerFixup:
    """Database and cache hygiene in a worker, wired to task and process signals."""

    worker: Any = None

    def __init__(self, app: Any) -> None:
        from django.core import cache
        from django.db import DatabaseError, InterfaceError, connections

        self.app = app
        self._connections = connections
        self._cache = cache
        self._interface_errors: tuple[type[BaseException], ...] = (InterfaceError,)
        self._database_error = DatabaseError
        self.db_reuse_max = _reuse_max(app)
        self._db_recycles = 0
        self._parent_pid = os.getpid()
        self._local = threading.local()
        self._installed = False

    def django_setup(self) -> None:
        import django

        django.setup()

    def validate_models(self) -> None:
        from django.core.checks import run_checks

        self.django_setup()
        if not os.environ.get("CELERY_SKIP_CHECKS"):
            run_checks()

    def install(self) -> DjangoWorkerFixup:
        if self._installed:
            return self
        self._installed = True
        from django.db.backends.signals import connection_created

        self._parent_pid = os.getpid()
        signals.beat_embedded_init.connect(self.close_database)
        signals.task_prerun.connect(self.on_task_prerun)
        signals.task_postrun.connect(self.on_task_postrun)
        signals.worker_process_init.connect(self.on_worker_process_init)
        connection_created.connect(self.on_connection_created, weak=True)
        self.close_database()
        self.close_cache()
        return self

    # -- signal receivers ----------------------------------------------------------------

    def on_connection_created(self, sender: Any = None, connection: Any = None, **kw: Any) -> None:
        """Remember connections opened by threads other than the main one (pool threads)."""
        if connection is None or threading.current_thread() is threading.main_thread():
            return
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = _ThreadConnections()
        holder.add(connection)

    def on_worker_process_init(self, **kwargs: Any) -> None:
        if os.environ.get("FORKED_BY_MULTIPROCESSING"):
            self.validate_models()
        if os.getpid() != self._parent_pid:
            # a forked child shares its parent's sockets: close our copy of each file
            # descriptor first, so closing the wrapper sends nothing on the parent's socket
            for conn in self._connections.all():
                if conn is not None and conn.connection is not None:
                    self._close_fd(conn)
        self._close_database()
        self.close_cache()

    def on_task_prerun(self, sender: Any = None, **kwargs: Any) -> None:
        if not getattr(getattr(sender, "request", None), "is_eager", False):
            self.close_database()

    def on_task_postrun(self, sender: Any = None, **kwargs: Any) -> None:
        if not getattr(getattr(sender, "request", None), "is_eager", False):
            self.close_database()
            self.close_cache()

    # -- closing ---------------------------------------------------------------------------

    def _close_fd(self, conn: Any) -> None:
        with contextlib.suppress(*self._interface_errors), conn.wrap_database_errors:
            try:
                os.close(conn.connection.fileno())
            except (AttributeError, OSError, TypeError):
                pass  # sqlite has no socket to share

    def close_database(self, **kwargs: Any) -> None:
        """Close every connection; with ``CELERY_DB_REUSE_MAX`` only every N-th time."""
        if not self.db_reuse_max:
            self._close_database()
            return
        if self._db_recycles >= self.db_reuse_max * 2:
            self._db_recycles = 0
            self._close_database()
        self._db_recycles += 1

    def _close_database(self) -> None:
        from django.conf import settings

        prefork = getattr(self.worker, "pool", None) == "prefork"
        for conn in self._connections.all(initialized_only=True):
            try:
                conn.close()
                options = settings.DATABASES.get(conn.alias, {}).get("OPTIONS", {})
                if options.get("pool") and prefork and hasattr(conn, "close_pool"):
                    with contextlib.suppress(KeyError):
                        conn.close_pool()
            except self._interface_errors:
                pass
            except self._database_error as exc:
                text = str(exc)
                if "closed" not in text and "not connected" not in text:
                    raise

    def close_cache(self) -> None:
        with contextlib.suppress(TypeError, AttributeError):
            self._cache.close_caches()


def _reuse_max(app: Any) -> int:
    for name in ("db_reuse_max", "CELERY_DB_REUSE_MAX"):
        try:
            value = app.conf.get(name)
        except Exception:  # noqa: BLE001 - an unknown name in a strict conf
            value = None
        if value:
            return int(value)
    return 0
