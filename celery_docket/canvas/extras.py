"""``xmap``/``xstarmap``/``chunks``: built-in tasks applying one task over many items."""

from __future__ import annotations

from typing import Any

from . import groups as _groups
from .base import Signature, signature
from .groups import group


class _Mapper(Signature):
    """``celery.map`` / ``celery.starmap``: one task applying another to many items."""

    builtin = ""

    def __init__(self, task: Any, it: Any, **options: Any) -> None:
        app = options.pop("app", None)
        super().__init__(
            self.builtin,
            (),
            {"task": signature(task), "it": list(it)},
            options,
            immutable=True,
            app=app or getattr(task, "_app", None),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        kw = d.get("kwargs") or {}
        return cls(kw.get("task"), kw.get("it", ()), app=app, **dict(d.get("options") or {}))


@Signature.register_type(name="xmap")
class xmap(_Mapper):  # noqa: N801 - Celery's name
    builtin = "celery.map"


@Signature.register_type(name="xstarmap")
class xstarmap(_Mapper):  # noqa: N801 - Celery's name
    builtin = "celery.starmap"


@Signature.register_type(name="chunks")
class chunks(Signature):  # noqa: N801 - Celery's name
    """``task.chunks(it, n)``: a group of starmap tasks over chunks of ``n`` items."""

    def __init__(self, task: Any, it: Any, n: int, **options: Any) -> None:
        app = options.pop("app", None)
        super().__init__(
            "celery.chunks",
            (),
            {"task": signature(task), "it": list(it), "n": n},
            options,
            immutable=True,
            app=app or getattr(task, "_app", None),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        kw = d.get("kwargs") or {}
        return cls(kw.get("task"), kw.get("it", ()), kw.get("n", 1), app=app)

    def group(self) -> _groups.group:
        kw = self["kwargs"]
        return self.chunk_group(kw["task"], kw["it"], kw["n"], app=self._app)

    @staticmethod
    def chunk_group(task: Any, it: list[Any], n: int, app: Any = None) -> _groups.group:
        items = list(it)
        return group(
            *(xstarmap(task, items[i : i + n], app=app) for i in range(0, len(items), n)),
            app=app,
        )

    @classmethod
    def apply_chunks(cls, task: Any, it: list[Any], n: int, app: Any = None) -> Any:
        return cls.chunk_group(task, it, n, app=app).apply_async()

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        return self.group().apply_async(**options)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        return self.group().apply(**options)

    def __call__(self, **options: Any) -> Any:
        return self.apply_async(**options)
