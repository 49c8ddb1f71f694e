"""``Signature``: a task call to make later, in Celery's dict form.

A signature is a dict with Celery's keys (task, args, kwargs, options, subtask_type,
immutable) so it can be stored, sent and rebuilt exactly as Celery does. The app is kept on
the object (``_app``), never in ``options``: options travel in messages and must encode.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from .. import _state

TYPES: dict[str, type[Signature]] = {}


def new_id() -> str:
    return str(uuid.uuid4())


def copy_value(value: Any) -> Any:
    """A copy of an option value deep enough that freezing the copy leaves the original."""
    if isinstance(value, Signature):
        return value.clone()
    if isinstance(value, dict):
        return {k: copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) and not isinstance(value, dict):
        return list(value)
    return [value]


class Signature(dict):  # type: ignore[type-arg]
    """A task call to make later: task name, partial args/kwargs, options."""

    _app: Any = None
    _type: Any = None

    @classmethod
    def register_type(cls, name: str | None = None) -> Callable[[type], type]:
        def _inner(subclass: type) -> type:
            TYPES[name or subclass.__name__] = subclass
            return subclass

        return _inner

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        """Rebuild a signature (or chain/group/chord) from its dict form."""
        kind = d.get("subtask_type")
        target = TYPES.get(kind) if kind else None
        if target is not None and target is not cls:
            return target.from_dict(d, app=app)
        if d.get("task") in _BUILTIN_DICT_TYPES and cls is Signature:
            return TYPES[_BUILTIN_DICT_TYPES[d["task"]]].from_dict(d, app=app)
        return Signature(d, app=app)

    def __init__(
        self,
        task: Any = None,
        args: Any = None,
        kwargs: Any = None,
        options: Any = None,
        type: Any = None,  # noqa: A002 - Celery's parameter name
        subtask_type: Any = None,
        immutable: bool = False,
        app: Any = None,
        **ex: Any,
    ) -> None:
        self._app = app
        if isinstance(task, dict):
            super().__init__(task)
            opts = self.get("options")
            self["options"] = dict(opts or {})
            self["options"].pop("app", None)
            return
        name = getattr(task, "name", task)
        if task is not None and not isinstance(task, str):
            self._type = task
            if self._app is None:
                self._app = getattr(task, "app", None) or getattr(task, "_app", None)
        opts = dict(options or {}, **ex)
        opts.pop("app", None)
        super().__init__(
            task=name,
            args=tuple(args or ()),
            kwargs=dict(kwargs or {}),
            options=opts,
            subtask_type=subtask_type,
            immutable=immutable,
        )

    # -- fields ------------------------------------------------------------------------------

    @property
    def app(self) -> Any:
        return self._app or _state.get_current_app()

    @property
    def task(self) -> Any:
        return self.get("task")

    @task.setter
    def task(self, value: Any) -> None:
        self["task"] = value

    name = task

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self.get("args") or ())

    @args.setter
    def args(self, value: Any) -> None:
        self["args"] = tuple(value or ())

    @property
    def kwargs(self) -> dict[str, Any]:
        kw = self.get("kwargs")
        if kw is None:
            kw = self["kwargs"] = {}
        return kw

    @kwargs.setter
    def kwargs(self, value: Any) -> None:
        self["kwargs"] = dict(value or {})

    @property
    def options(self) -> dict[str, Any]:
        return self.setdefault("options", {})

    @options.setter
    def options(self, value: Any) -> None:
        self["options"] = dict(value or {})

    @property
    def immutable(self) -> bool:
        return bool(self.get("immutable"))

    @immutable.setter
    def immutable(self, value: bool) -> None:
        self["immutable"] = value

    @property
    def subtask_type(self) -> Any:
        return self.get("subtask_type")

    @subtask_type.setter
    def subtask_type(self, value: Any) -> None:
        self["subtask_type"] = value

    @property
    def id(self) -> Any:
        return self.options.get("task_id")

    @id.setter
    def id(self, value: Any) -> None:
        self.options["task_id"] = value

    @property
    def type(self) -> Any:
        return self._type or self.app.tasks[self.name]

    @property
    def AsyncResult(self) -> Any:  # noqa: N802 - Celery's name
        return self.app.AsyncResult

    def __repr__(self) -> str:
        return self.reprcall()

    def reprcall(self, *args: Any, **kwargs: Any) -> str:
        new_args = tuple(args) + self.args
        new_kwargs = dict(self.kwargs, **kwargs)
        parts = [repr(a) for a in new_args] + [f"{k}={v!r}" for k, v in new_kwargs.items()]
        return f"{self.name}({', '.join(parts)})"

    def __reduce__(self) -> Any:
        return signature, (dict(self),)

    def __json__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: Any) -> Signature:
        return self.clone()

    # -- building ----------------------------------------------------------------------------

    def _merge(
        self, args: Any = None, kwargs: Any = None, options: Any = None, force: bool = False
    ) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
        mine = self.options
        # stamps (and the list naming them) are not overridden by call options, as in Celery
        fixed = set(as_list(mine.get("stamped_headers"))) | {"stamped_headers"}
        opts = dict(
            mine, **{k: v for k, v in (options or {}).items() if k not in fixed or k not in mine}
        )
        if self.immutable and not force:
            return self.args, dict(self.kwargs), opts
        return (
            tuple(args or ()) + self.args,
            dict(self.kwargs, **(kwargs or {})),
            opts,
        )

    def clone(self, args: Any = None, kwargs: Any = None, **opts: Any) -> Signature:
        """A copy with partial args prepended and options merged (the original is unchanged)."""
        new_args, new_kwargs, new_opts = self._merge(args, kwargs, opts)
        sig = Signature.from_dict(
            {
                "task": self.task,
                "args": new_args,
                "kwargs": {k: copy_value(v) for k, v in new_kwargs.items()},
                "options": copy_value(new_opts),
                "subtask_type": self.subtask_type,
                "immutable": self.immutable,
            },
            app=self._app,
        )
        sig._type = self._type
        return sig

    partial = clone

    def replace(self, args: Any = None, kwargs: Any = None, options: Any = None) -> Signature:
        sig = self.clone()
        if args is not None:
            sig.args = args
        if kwargs is not None:
            sig.kwargs = kwargs
        if options is not None:
            sig.options = options
        return sig

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        if immutable is not None:
            self.set_immutable(immutable)
        options.pop("app", None)
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        self.immutable = immutable

    def _list_option(self, key: str) -> list[Any]:
        items = self.options.get(key)
        if not isinstance(items, list):
            items = self.options[key] = as_list(items)
        return items

    def append_to_list_option(self, key: str, value: Any) -> Any:
        items = self._list_option(key)
        if value not in items:
            items.append(value)
        return value

    def extend_list_option(self, key: str, value: Any) -> None:
        self._list_option(key).extend(as_list(value))

    def link(self, callback: Any) -> Any:
        """Run ``callback`` with this task's result when it succeeds; returns the callback."""
        return self.append_to_list_option("link", callback)

    def link_error(self, errback: Any) -> Any:
        """Run ``errback`` when this task fails; returns the errback."""
        return self.append_to_list_option("link_error", errback)

    def on_error(self, errback: Any) -> Signature:
        """``link_error`` that returns this signature, for call chaining (as Celery)."""
        self.link_error(errback)
        return self

    def stamp(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> None:
        """Stamp every task of this canvas (``canvas/stamping.py``)."""
        from . import stamping

        stamping.stamp(self, visitor, append_stamps, headers)

    def stamp_links(self, visitor: Any, append_stamps: bool = False, **headers: Any) -> None:
        from . import stamping

        stamping.stamp_links(self, visitor, append_stamps, headers)

    def flatten_links(self) -> list[Signature]:
        out: list[Signature] = [self]
        for link in as_list(self.options.get("link")):
            out.extend(maybe_signature(link, app=self._app).flatten_links())
        return out

    def freeze(
        self,
        _id: str | None = None,
        group_id: str | None = None,
        chord: Any = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        group_index: int | None = None,
    ) -> Any:
        """Fix the task id (and the group/chord it reports to) now; returns its result."""
        opts = self.options
        task_id = opts.get("task_id")
        if not task_id:
            task_id = opts["task_id"] = _id or new_id()
        if root_id:
            opts["root_id"] = root_id
        if parent_id:
            opts["parent_id"] = parent_id
        if group_id and "group_id" not in opts:
            opts["group_id"] = group_id
        if chord:
            opts["chord"] = chord
        if group_index is not None:
            opts["group_index"] = group_index
        return self.app.AsyncResult(task_id)

    _freeze = freeze

    def __or__(self, other: Any) -> Any:
        from .chains import chain

        if not isinstance(other, Signature):
            return NotImplemented
        return chain(self, other, app=self._app)

    def __ior__(self, other: Any) -> Any:
        return self.__or__(other)

    def __invert__(self) -> Any:
        return self.apply_async().get()

    # -- calling -----------------------------------------------------------------------------

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        options = {k: v for k, v in options.items() if v is not None}
        new_args, new_kwargs, new_opts = self._merge(args, kwargs, options)
        new_opts.pop("route_name", None)
        task = self.app.tasks.get(self.name)
        if task is not None:
            return task.apply_async(new_args, new_kwargs, **new_opts)
        return self.app.send_task(self.name, new_args, new_kwargs, **new_opts)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        options = {k: v for k, v in options.items() if v is not None}
        new_args, new_kwargs, new_opts = self._merge(args, kwargs, options)
        return self.type.apply(new_args, new_kwargs, **new_opts)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task here, in this process (as Celery)."""
        new_args, new_kwargs, _ = self._merge(args, kwargs)
        return self.type(*new_args, **new_kwargs)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return self.clone(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        return self.clone(args, kwargs).set(immutable=True)


_BUILTIN_DICT_TYPES = {
    "celery.chunks": "chunks",
    "celery.map": "xmap",
    "celery.starmap": "xstarmap",
}


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """A signature from a task, a name, or Celery's dict form (keeping its canvas type)."""
    app = kwargs.pop("app", None)
    if isinstance(varies, dict) and not args and not kwargs:
        if isinstance(varies, Signature):
            return varies.clone()
        return Signature.from_dict(varies, app=app)
    kwargs["app"] = app
    return Signature(varies, *args, **kwargs)


def maybe_signature(d: Any, app: Any = None, clone: bool = False) -> Any:
    """``d`` as a signature object (dicts are rebuilt; signatures kept unless ``clone``)."""
    if d is None:
        return None
    if isinstance(d, Signature):
        if clone:
            d = d.clone()
        if app is not None and d._app is None:
            d._app = app
        return d
    if isinstance(d, dict):
        return Signature.from_dict(d, app=app)
    return d


subtask = signature


class regen(list):  # type: ignore[type-arg]  # noqa: N801 - Celery's name
    """A list filled lazily from an iterator, so a generator header is read as it is sent."""

    def __init__(self, it: Any) -> None:
        super().__init__()
        self._it: Iterator[Any] | None = iter(it)

    def _pull(self) -> bool:
        if self._it is None:
            return False
        try:
            super().append(next(self._it))
            return True
        except StopIteration:
            self._it = None
            return False

    def _fill(self) -> None:
        while self._pull():
            pass

    def __iter__(self) -> Iterator[Any]:
        i = 0
        while True:
            if i < list.__len__(self):
                yield list.__getitem__(self, i)
                i += 1
            elif not self._pull():
                return

    def __len__(self) -> int:
        self._fill()
        return list.__len__(self)

    def __bool__(self) -> bool:
        return list.__len__(self) > 0 or self._pull()

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int) and index >= 0:
            while list.__len__(self) <= index and self._pull():
                pass
        else:
            self._fill()
        return list.__getitem__(self, index)

    def __reduce__(self) -> Any:
        return list, (list(iter(self)),)

    @property
    def fully_consumed(self) -> bool:
        return self._it is None
