"""``@app.task(pydantic=True)``: arguments validated into models, model results dumped.

On the worker, each argument annotated with a pydantic model is validated into that model
(from the plain JSON the message carries), and a returned model that matches the return
annotation is dumped to plain data. On the caller, model instances passed for such
arguments are dumped, so JSON can carry them; one that would not come back equal is left
as it is, and the serializer reports it as it would without ``pydantic=True``.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from ..exceptions import ImproperlyConfigured

__all__ = ("PYDANTIC_OPTIONS", "PydanticTask", "pydantic_wrapper", "wrap_task_function")


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` for ``Optional[X]`` / ``X | None``; else ``None``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return None


def _is_model(annotation: Any, base: type) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, base)


class PydanticTask:
    """The wrapper of one task function and the caller-side argument dumper."""

    def __init__(
        self,
        app: Any,
        fun: Callable[..., Any],
        name: str,
        strict: bool = False,
        context: dict[str, Any] | None = None,
        dump_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            import pydantic
        except ModuleNotFoundError as exc:
            raise ImproperlyConfigured(
                "pydantic=True needs pydantic installed (pip install pydantic)"
            ) from exc
        self.base_model: type = pydantic.BaseModel
        self.app = app
        self.fun = fun
        self.name = name
        self.strict = strict
        self.context = dict(context or {})
        self.dump_kwargs = {"mode": "json", **(dump_kwargs or {})}
        self.signature = inspect.signature(fun)
        try:
            self.hints: dict[str, Any] | None = typing.get_type_hints(fun)
        except (NameError, AttributeError, TypeError):
            self.hints = None  # unresolvable string annotations: use the raw ones
        params = self.signature.parameters.values()
        self.positional = [
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def _annotation(self, name: str) -> Any:
        if self.hints and name in self.hints:
            return self.hints[name]
        if name == "return":
            return self.signature.return_annotation
        return self.signature.parameters[name].annotation

    def model_for(self, name: str, value: Any) -> type | None:
        """The model ``name`` is validated with, if its annotation is one."""
        annotation = self._annotation(name)
        inner = _unwrap_optional(annotation)
        if inner is not None and value is not None:
            annotation = inner
        return annotation if _is_model(annotation, self.base_model) else None

    def validate(self, model: type, value: Any) -> Any:
        context = {**self.context, "celery_app": self.app, "celery_task_name": self.name}
        return model.model_validate(value, strict=self.strict, context=context)  # type: ignore[attr-defined]

    def wrap(self) -> Callable[..., Any]:
        @functools.wraps(self.fun)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = self.signature.bind(*args, **kwargs)
            for name, value in list(bound.arguments.items()):
                model = self.model_for(name, value)
                if model is not None:
                    bound.arguments[name] = self.validate(model, value)
            value = self.fun(*bound.args, **bound.kwargs)
            returns = self._annotation("return")
            returns = _unwrap_optional(returns) or returns
            if isinstance(returns, type) and isinstance(value, self.base_model):
                if isinstance(value, returns):
                    return value.model_dump(**self.dump_kwargs)  # type: ignore[attr-defined]
            return value

        wrapper.dump_arguments = self.dump_arguments  # type: ignore[attr-defined]
        return wrapper

    def _dump_one(self, name: str | None, value: Any) -> Any:
        if name is None or not isinstance(value, self.base_model):
            return value
        if hasattr(type(value), "__json__"):
            return value  # kombu already knows how to send it
        model = self.model_for(name, value)
        if model is None:
            return value
        try:
            dumped = value.model_dump(**self.dump_kwargs)  # type: ignore[attr-defined]
            if self.validate(model, dumped) == value:
                return dumped
        except Exception:  # noqa: BLE001 - validators that only work on a worker: leave the model as it is
            pass
        return value

    def dump_arguments(self, args: Any, kwargs: Any, bound: bool = False) -> tuple[Any, Any]:
        """``(args, kwargs)`` with the models the task would get back equal dumped."""
        names = self.positional[1:] if bound else self.positional
        out_args = [
            self._dump_one(names[i] if i < len(names) else None, v)
            for i, v in enumerate(args or ())
        ]
        out_kwargs = {
            k: self._dump_one(k if k in self.signature.parameters else None, v)
            for k, v in (kwargs or {}).items()
        }
        return out_args, out_kwargs


def pydantic_wrapper(
    app: Any,
    fun: Callable[..., Any],
    name: str,
    strict: bool = False,
    context: dict[str, Any] | None = None,
    dump_kwargs: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """``fun`` validating and dumping pydantic models (Celery's ``pydantic=True``)."""
    return PydanticTask(app, fun, name, strict, context, dump_kwargs).wrap()


PYDANTIC_OPTIONS = ("pydantic", "pydantic_strict", "pydantic_context", "pydantic_dump_kwargs")
"""The task options that belong to the pydantic wrapper, not to the task class."""


def wrap_task_function(
    app: Any, fun: Callable[..., Any], name: str, bind: bool, options: dict[str, Any]
) -> Callable[..., Any]:
    """``fun`` wrapped to validate and dump models; takes the pydantic keys out of ``options``
    and puts in what the task class needs (the argument dumper, the original function)."""
    settings = {key: options.pop(key) for key in PYDANTIC_OPTIONS if key in options}
    wrapped = pydantic_wrapper(
        app,
        fun,
        name,
        strict=bool(settings.get("pydantic_strict", False)),
        context=settings.get("pydantic_context"),
        dump_kwargs=settings.get("pydantic_dump_kwargs"),
    )
    options["_dump_arguments"] = staticmethod(
        functools.partial(wrapped.dump_arguments, bound=bind)  # type: ignore[attr-defined]
    )
    options["__wrapped__"] = fun
    return wrapped
