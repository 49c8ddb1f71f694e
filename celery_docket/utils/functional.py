"""``celery.utils.functional``: the iteration and laziness helpers projects import."""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial, wraps
from itertools import islice
from threading import RLock
from typing import Any

__all__ = (
    "LRUCache",
    "chunks",
    "dictfilter",
    "first",
    "firstmethod",
    "fun_accepts_kwargs",
    "head_from_fun",
    "is_list",
    "lazy",
    "mattrgetter",
    "maybe",
    "maybe_evaluate",
    "maybe_list",
    "memoize",
    "mlazy",
    "noop",
    "padlist",
    "partial",
    "regen",
    "uniq",
)


def noop(*args: Any, **kwargs: Any) -> None:
    """Takes anything, does nothing."""


def pass1(arg: Any, *args: Any, **kwargs: Any) -> Any:
    return arg


def is_list(
    obj: Any, scalars: tuple[type, ...] = (Mapping, str), iters: tuple[type, ...] = (Iterable,)
) -> bool:
    """An iterable that is not a mapping or a string."""
    return isinstance(obj, iters) and not isinstance(obj, scalars)


def maybe_list(obj: Any, scalars: tuple[type, ...] = (Mapping, str)) -> Any:
    """``obj`` as a list unless it already is one (``None`` stays ``None``)."""
    return obj if obj is None or is_list(obj, scalars) else [obj]


def chunks(it: Iterable[Any], n: int) -> Iterator[list[Any]]:
    """``chunks(range(10), 3)`` -> ``[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]``."""
    iterator = iter(it)
    while True:
        part = list(islice(iterator, n))
        if not part:
            return
        yield part


def padlist(container: list[Any], size: int, default: Any = None) -> list[Any]:
    """``container`` cut or padded with ``default`` to ``size`` items."""
    return list(container)[:size] + [default] * (size - len(container))


def first(predicate: Callable[[Any], Any] | None, it: Iterable[Any]) -> Any:
    """The first item for which ``predicate`` is true (the first not-None one without it)."""
    for item in it:
        if (item is not None) if predicate is None else predicate(item):
            return item
    return None


def firstmethod(method: str, on_call: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """A function calling ``method`` on each object of a list until one returns non-None."""

    def call(it: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        for obj in it:
            fun = getattr(obj, method, None)
            if fun is None:
                continue
            value = on_call(fun, *args, **kwargs) if on_call else fun(*args, **kwargs)
            if value is not None:
                return value
        return None

    return call


def mattrgetter(*attrs: str) -> Callable[[Any], dict[str, Any]]:
    """Like ``operator.attrgetter`` but to a dict, with None for missing attributes."""
    return lambda obj: {attr: getattr(obj, attr, None) for attr in attrs}


def uniq(it: Iterable[Any]) -> Iterator[Any]:
    """Items in order, each once."""
    seen: set[Any] = set()
    for item in it:
        if item not in seen:
            seen.add(item)
            yield item


def dictfilter(d: Mapping[Any, Any] | None = None, **kw: Any) -> dict[Any, Any]:
    """The mapping without its ``None`` values."""
    source = dict(d or {}, **kw) if d is not None or kw else {}
    return {k: v for k, v in source.items() if v is not None}


class _Regen(list):  # type: ignore[type-arg]
    """A list filled from a generator as it is read, so it can be iterated more than once."""

    def __init__(self, it: Iterable[Any]) -> None:
        super().__init__()
        self._it: Iterator[Any] | None = iter(it)

    def _fill(self) -> None:
        if self._it is not None:
            super().extend(self._it)
            self._it = None

    def __iter__(self) -> Iterator[Any]:
        index = 0
        while True:
            if index < super().__len__():
                yield super().__getitem__(index)
                index += 1
                continue
            if self._it is None:
                return
            try:
                super().append(next(self._it))
            except StopIteration:
                self._it = None
                return

    def __getitem__(self, index: Any) -> Any:
        self._fill()
        return super().__getitem__(index)

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __bool__(self) -> bool:
        for _ in self:
            return True
        return False

    def __repr__(self) -> str:
        self._fill()
        return super().__repr__()


def regen(it: Iterable[Any]) -> Any:
    """A generator made re-iterable; lists and tuples are returned as they are."""
    if isinstance(it, (list, tuple)):
        return it
    return _Regen(it)


class lazy:  # noqa: N801 - Celery's name
    """A call made when the value is first needed (``maybe_evaluate``, ``str``, ``()``)."""

    def __init__(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._fun, self._args, self._kwargs = fun, args, kwargs

    def __call__(self) -> Any:
        return self.evaluate()

    def evaluate(self) -> Any:
        return self._fun(*self._args, **self._kwargs)

    def __str__(self) -> str:
        return str(self())

    def __repr__(self) -> str:
        return repr(self())

    def __eq__(self, other: object) -> bool:
        return bool(self() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self() != other)

    __hash__ = None  # type: ignore[assignment]


class mlazy(lazy):  # noqa: N801 - Celery's name
    """A :class:`lazy` that remembers its value after the first evaluation."""

    _evaluated = False
    _value: Any = None

    def evaluate(self) -> Any:
        if not self._evaluated:
            self._value = super().evaluate()
            self._evaluated = True
        return self._value


def maybe_evaluate(value: Any) -> Any:
    """The value of a :class:`lazy`, anything else unchanged."""
    return value.evaluate() if isinstance(value, lazy) else value


def maybe(typ: Callable[[Any], Any], val: Any) -> Any:
    """``typ(val)`` unless ``val`` is None."""
    return typ(val) if val is not None else val


class LRUCache:
    """A thread-safe mapping that forgets its least recently used keys beyond ``limit``."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.data: OrderedDict[Any, Any] = OrderedDict()
        self.mutex = RLock()

    def __getitem__(self, key: Any) -> Any:
        with self.mutex:
            value = self.data.pop(key)
            self.data[key] = value
            return value

    def __setitem__(self, key: Any, value: Any) -> None:
        with self.mutex:
            self.data.pop(key, None)
            self.data[key] = value
            while self.limit and len(self.data) > self.limit:
                self.data.popitem(last=False)

    def __delitem__(self, key: Any) -> None:
        with self.mutex:
            del self.data[key]

    def __contains__(self, key: Any) -> bool:
        return key in self.data

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self.data))

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> list[Any]:
        return list(self.data)

    def values(self) -> list[Any]:
        return list(self.data.values())

    def items(self) -> list[tuple[Any, Any]]:
        return list(self.data.items())

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        with self.mutex:
            self.data.clear()

    def incr(self, key: Any, delta: int = 1) -> int:
        with self.mutex:
            value = int(self.data.pop(key, 0)) + delta
            self.data[key] = value
            return value


def memoize(
    maxsize: int | None = None,
    keyfun: Callable[..., Any] | None = None,
    Cache: Any = LRUCache,  # noqa: N803 - Celery's name
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Cache a function's results by its arguments, the oldest forgotten beyond ``maxsize``."""

    def decorate(fun: Callable[..., Any]) -> Callable[..., Any]:
        cache = Cache(limit=maxsize)

        @wraps(fun)
        def memoized(*args: Any, **kwargs: Any) -> Any:
            key = keyfun(args, kwargs) if keyfun else (args, tuple(sorted(kwargs.items())))
            try:
                return cache[key]
            except KeyError:
                value = cache[key] = fun(*args, **kwargs)
                return value

        memoized.clear = cache.clear  # type: ignore[attr-defined]
        return memoized

    return decorate


def fun_accepts_kwargs(fun: Callable[..., Any]) -> bool:
    """Whether ``fun`` takes ``**kwargs``."""
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fun).parameters.values()
    )


def head_from_fun(fun: Callable[..., Any], bound: bool = False) -> Callable[..., Any]:
    """A body-less function with ``fun``'s signature, to check call arguments against."""
    signature = inspect.signature(fun)
    if bound:
        params = list(signature.parameters.values())[1:]
        signature = signature.replace(parameters=params)

    def head(*args: Any, **kwargs: Any) -> None:
        signature.bind(*args, **kwargs)

    head.__signature__ = signature  # type: ignore[attr-defined]
    head.__name__ = getattr(fun, "__name__", "head")
    return head


partial = partial
