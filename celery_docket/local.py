"""A small lazy proxy, as Celery's ``current_app``/``current_task`` are proxies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Proxy:
    """Forwards everything to the object ``factory()`` returns at the time of use."""

    __slots__ = ("__factory", "__name")

    def __init__(self, factory: Callable[[], Any], name: str | None = None) -> None:
        object.__setattr__(self, "_Proxy__factory", factory)
        object.__setattr__(self, "_Proxy__name", name)

    def _get_current_object(self) -> Any:
        return self.__factory()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_current_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get_current_object()(*args, **kwargs)

    def __repr__(self) -> str:
        try:
            return repr(self._get_current_object())
        except RuntimeError:
            return f"<{type(self).__name__} unbound>"

    def __bool__(self) -> bool:
        try:
            return bool(self._get_current_object())
        except RuntimeError:
            return False

    def __eq__(self, other: object) -> bool:
        return bool(self._get_current_object() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self._get_current_object() != other)

    def __hash__(self) -> int:
        return hash(self._get_current_object())

    def __str__(self) -> str:
        return str(self._get_current_object())
