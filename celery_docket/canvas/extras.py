"""``xmap``/``xstarmap``/``chunks`` (built-in tasks over many items) and ``StampingVisitor``."""

from __future__ import annotations

from typing import Any

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

    def group(self) -> group:
        kw = self["kwargs"]
        return self.chunk_group(kw["task"], kw["it"], kw["n"], app=self._app)

    @staticmethod
    def chunk_group(task: Any, it: list[Any], n: int, app: Any = None) -> group:
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


class StampingVisitor:
    """Celery's base class for stamping visitors, so code that subclasses it imports.

    Stamping (``Signature.stamp``, ``revoke_by_stamped_headers``) is not supported: applying
    a visitor raises ``NotImplementedError``.
    """

    def on_signature(self, sig: Any, **headers: Any) -> dict[str, Any]:
        raise NotImplementedError("stamping is not supported by celery_docket")

    def on_group_start(self, group: Any, **headers: Any) -> dict[str, Any]:
        return {}

    def on_group_end(self, group: Any, **headers: Any) -> None:
        return None

    def on_chain_start(self, chain: Any, **headers: Any) -> dict[str, Any]:
        return {}

    def on_chain_end(self, chain: Any, **headers: Any) -> None:
        return None

    def on_chord_header_start(self, sig: Any, **header: Any) -> dict[str, Any]:
        return {}

    def on_chord_header_end(self, sig: Any, **header: Any) -> None:
        return None

    def on_chord_body(self, sig: Any, **header: Any) -> dict[str, Any]:
        return {}

    def on_callback(self, callback: Any, **header: Any) -> dict[str, Any]:
        return {}

    def on_errback(self, errback: Any, **header: Any) -> dict[str, Any]:
        return {}
