"""Framework fix-ups applied when an app is made (Celery's ``celery.fixups``).

Celery installs its Django fix-up from the app's constructor whenever
``DJANGO_SETTINGS_MODULE`` is set; projects rely on that without knowing it, so we do the
same. ``Celery(fixups=[])`` turns it off, as in Celery.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

BUILTIN_FIXUPS = ("celery_docket.fixups.django:fixup",)

#: Celery's own fix-up paths name ours (a carried-over ``fixups=[...]`` keeps working)
_CELERY_PATHS = {"celery.fixups.django:fixup": "celery_docket.fixups.django:fixup"}


def _resolve(spec: Any) -> Any:
    if not isinstance(spec, str):
        return spec
    spec = _CELERY_PATHS.get(spec, spec)
    if ":" in spec:
        module, _, attr = spec.partition(":")
    else:
        module, _, attr = spec.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def install_fixups(app: Any, fixups: Iterable[Any] | None) -> list[Any]:
    """Call each fix-up with the app; keep what they return (they hold signal receivers)."""
    chosen = BUILTIN_FIXUPS if fixups is None else tuple(fixups)
    installed = []
    for spec in chosen:
        result = _resolve(spec)(app)
        if result is not None:
            installed.append(result)
    return installed


def discovered_packages(fixups: Iterable[Any]) -> list[str]:
    """``autodiscover_tasks()`` without packages: the fix-ups' (Django's installed apps),
    or the apps of a Django set up by hand; nothing otherwise (as in Celery)."""
    for fixup in fixups:
        if hasattr(fixup, "autodiscover_tasks"):
            return list(fixup.autodiscover_tasks())
    try:
        from django.apps import apps
    except ImportError:
        return []
    return [config.name for config in apps.get_app_configs()] if apps.ready else []


__all__ = ["BUILTIN_FIXUPS", "discovered_packages", "install_fixups"]
