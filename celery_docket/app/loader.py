"""``app.loader``: importing the modules that define an app's tasks (``celery.loaders``)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ("Loader",)


class Loader:
    """Imports task modules for an app, as Celery's default loader does."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.task_modules: set[str] = set()
        self.worker_initialized = False

    def import_task_module(self, module: str) -> ModuleType:
        self.task_modules.add(module)
        return importlib.import_module(module)

    def import_module(self, module: str, package: str | None = None) -> ModuleType:
        return importlib.import_module(module, package=package)

    def import_default_modules(self) -> list[ModuleType]:
        conf = self.app.conf
        names = list(conf.get("imports") or ()) + list(conf.get("include") or ())
        return [self.import_task_module(name) for name in names]

    def init_worker(self) -> None:
        if not self.worker_initialized:
            self.worker_initialized = True
            self.import_default_modules()

    def on_worker_init(self) -> None:
        """A hook for subclasses, as in Celery."""

    def on_worker_process_init(self) -> None:
        """A hook for subclasses, as in Celery."""

    def read_configuration(self, env: str = "CELERY_CONFIG_MODULE") -> dict[str, Any]:
        return {}
