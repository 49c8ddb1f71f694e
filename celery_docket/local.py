"""A small lazy proxy, as Celery's ``current_app``/``current_task`` are proxies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Proxy:
    """Forwards everything to the object ``factory()`` returns at the time of use.

    Attribute reads, writes and deletes all reach the real object, so
    ``mock.patch("proj.tasks.add.delay")`` on a ``@shared_task`` patches the task and
    restores it on exit.
    """

    __slots__ = ("__factory", "__name", "__weakref__")

    def __init__(self, factory: Callable[[], Any], name: str | None = None) -> None:
        object.__setattr__(self, "_Proxy__factory", factory)
        object.__setattr__(self, "_Proxy__name", name)

    def _get_current_object(self) -> Any:
        return self.__factory()

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        # mock.patch reads target.__dict__ to tell an instance attribute from a class one
        try:
            return dict(vars(self._get_current_object()))
        except (RuntimeError, TypeError):
            return {}

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(proxy, Task) is True, as in Celery
        try:
            return type(self._get_current_object())
        except RuntimeError:
            return Proxy

    def __dir__(self) -> list[str]:
        try:
            return dir(self._get_current_object())
        except RuntimeError:
            return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_current_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._get_current_object(), name)

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
