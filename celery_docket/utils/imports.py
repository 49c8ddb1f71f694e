"""``celery.utils.imports``: resolving ``"module:attr"`` names to objects."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ("NotAPackage", "import_from_cwd", "instantiate", "qualname", "symbol_by_name")


class NotAPackage(Exception):
    """Raised when a module expected to be a package is not one."""


def qualname(obj: Any) -> str:
    """``module.QualName`` of a class, function or instance."""
    if not hasattr(obj, "__qualname__") and hasattr(obj, "__class__"):
        obj = obj.__class__
    return f"{obj.__module__}.{obj.__qualname__}"


def symbol_by_name(
    name: Any,
    aliases: Mapping[str, str] | None = None,
    imp: Any = None,
    package: str | None = None,
    sep: str = ".",
    default: Any = None,
    **kwargs: Any,
) -> Any:
    """``"pkg.mod:Attr"`` or ``"pkg.mod.Attr"`` -> the object; a non-string is returned as is."""
    if not isinstance(name, str):
        return name
    name = (aliases or {}).get(name, name)
    imp = imp or importlib.import_module
    module_name, colon, attr = name.partition(":")
    if not colon:
        module_name, _, attr = name.rpartition(sep)
    try:
        module = imp(module_name, package=package, **kwargs) if module_name else None
        return getattr(module, attr) if attr else module
    except (ImportError, AttributeError):
        if default is not None:
            return default
        raise


def instantiate(name: Any, *args: Any, **kwargs: Any) -> Any:
    """``symbol_by_name(name)(*args, **kwargs)``."""
    return symbol_by_name(name)(*args, **kwargs)


def import_from_cwd(module: str, imp: Any = None, package: str | None = None) -> Any:
    """Import ``module`` with the current directory first on ``sys.path``."""
    imp = imp or importlib.import_module
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return imp(module, package=package)
    finally:
        if added:
            try:
                sys.path.remove(cwd)
            except ValueError:
                pass
