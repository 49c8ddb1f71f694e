"""Signatures and the basic canvas: ``signature``, ``chain``, ``group`` (Celery's dict form).

A signature is a dict with Celery's keys (task, args, kwargs, options, subtask_type,
immutable) so it can be stored and sent exactly as Celery sends it.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import _state


class Signature(dict):  # type: ignore[type-arg]
    """A task call to make later: task name, partial args/kwargs, options."""

    def __init__(
        self,
        task: Any = None,
        args: Any = None,
        kwargs: Any = None,
        options: Any = None,
        type: Any = None,
        subtask_type: Any = None,  # noqa: A002
        immutable: bool = False,
        app: Any = None,
        **ex: Any,
    ) -> None:
        if isinstance(task, dict) and args is None and kwargs is None:
            super().__init__(task)
            self._app = app
            self._type = None
            return
        name = getattr(task, "name", task)
        super().__init__(
            task=name,
            args=tuple(args or ()),
            kwargs=dict(kwargs or {}),
            options=dict(options or {}, **ex),
            subtask_type=subtask_type,
            immutable=immutable,
        )
        self._app = app or getattr(task, "app", None)
        self._type = task if not isinstance(task, str) else None

    @property
    def app(self) -> Any:
        return self._app or _state.get_current_app()

    name = property(lambda self: self.get("task"))
    task = property(lambda self: self.get("task"))
    args = property(lambda self: tuple(self.get("args") or ()))
    kwargs = property(lambda self: dict(self.get("kwargs") or {}))
    options = property(lambda self: self.setdefault("options", {}))
    immutable = property(lambda self: bool(self.get("immutable")))
    subtask_type = property(lambda self: self.get("subtask_type"))

    @property
    def type(self) -> Any:
        return self._type or self.app.tasks[self.name]

    @property
    def id(self) -> Any:
        return self.options.get("task_id")

    def __repr__(self) -> str:
        args = ", ".join(
            [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        )
        return f"{self.name}({args})"

    def __or__(self, other: Any) -> Any:
        return chain(self, other)

    def _merge(self, args: Any = None, kwargs: Any = None, options: Any = None) -> tuple:
        if self.immutable:
            return self.args, self.kwargs, dict(self.options, **(options or {}))
        return (
            tuple(args or ()) + self.args,
            dict(self.kwargs, **(kwargs or {})),
            dict(self.options, **(options or {})),
        )

    def clone(self, args: Any = None, kwargs: Any = None, **opts: Any) -> Signature:
        if type(self) is not Signature:  # chain/group/chord: a copy of the same kind
            copy = _from_dict(dict(self), self._app)
            copy.options.update(opts)
            return copy
        new_args, new_kwargs, new_opts = self._merge(args, kwargs, opts)
        sig = Signature(
            self.name,
            new_args,
            new_kwargs,
            new_opts,
            subtask_type=self.subtask_type,
            immutable=self.immutable,
            app=self._app,
        )
        sig._type = self._type
        return sig

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        if immutable is not None:
            self["immutable"] = immutable
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        self["immutable"] = immutable

    def link(self, callback: Any) -> Any:
        self.options.setdefault("link", []).append(callback)
        return callback

    def link_error(self, errback: Any) -> Any:
        self.options.setdefault("link_error", []).append(errback)
        return errback

    on_error = link_error

    def freeze(self, _id: str | None = None, **kwargs: Any) -> Any:
        task_id = self.options.setdefault("task_id", _id or str(uuid.uuid4()))
        return self.app.AsyncResult(task_id)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        new_args, new_kwargs, new_opts = self._merge(args, kwargs, options)
        task = self.app.tasks.get(self.name)
        if task is not None:
            return task.apply_async(new_args, new_kwargs, **new_opts)
        return self.app.send_task(self.name, new_args, new_kwargs, **new_opts)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        new_args, new_kwargs, new_opts = self._merge(args, kwargs, options)
        return self.type.apply(new_args, new_kwargs, **new_opts)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        new_args, new_kwargs, _ = self._merge(args, kwargs)
        return self.type(*new_args, **new_kwargs)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return self.clone(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        return self.clone(args, kwargs).set(immutable=True)


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """A signature from a task, a name, or Celery's dict form (keeping its canvas type)."""
    app = kwargs.pop("app", None)
    if isinstance(varies, dict) and not args and not kwargs:
        if isinstance(varies, Signature):
            return varies if type(varies) is not Signature else varies.clone()
        return _from_dict(varies, app)
    return Signature(varies, *args, app=app, **kwargs)


def _from_dict(d: dict[str, Any], app: Any) -> Signature:
    kind = d.get("subtask_type")
    kw = d.get("kwargs") or {}
    options = dict(d.get("options") or {})
    if kind == "chain":
        return chain(*[_from_dict(t, app) for t in kw.get("tasks", ())], app=app, **options)
    if kind == "group":
        return group(*[_from_dict(t, app) for t in kw.get("tasks", ())], app=app, **options)
    if kind == "chord":
        body = kw.get("body")
        return chord(
            [_from_dict(t, app) for t in kw.get("header", ())],
            _from_dict(body, app) if isinstance(body, dict) else body,
            app=app,
            **options,
        )
    if d.get("task") == "celery.chunks":
        kw = d.get("kwargs") or {}
        return chunks(kw.get("task"), kw.get("it", ()), kw.get("n", 1), app=app)
    return Signature(d, app=app)


maybe_signature = signature
subtask = signature


class chain(Signature):  # noqa: N801 - Celery's name
    """Run tasks one after another, each getting the previous result as first argument."""

    def __init__(self, *tasks: Any, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict) and hasattr(tasks[0], "__iter__"):
            tasks = tuple(tasks[0])
        flat: list[Signature] = []
        for t in tasks:
            if isinstance(t, chain):
                flat.extend(t.tasks)
            else:
                flat.append(signature(t))
        super().__init__("celery.chain", (), {"tasks": flat}, options, subtask_type="chain")
        self._app = options.pop("app", None) or (flat[0]._app if flat else None)

    @property
    def tasks(self) -> list[Signature]:
        return list(self["kwargs"]["tasks"])

    def __or__(self, other: Any) -> Any:
        return chain(*self.tasks, other)

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        tasks = _upgrade_groups([t.clone() for t in self.tasks])
        if not tasks:
            raise ValueError("empty chain")
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)
        # ids are fixed up front so the caller gets the last task's result, whose parents
        # lead back to the first, as in Celery
        parent = None
        results = []
        for t in tasks:
            holder = t
            if isinstance(t, chord):
                holder = t.body if isinstance(t.body, Signature) else signature(t.body)
                t["kwargs"]["body"] = holder
            holder.options.setdefault("task_id", str(uuid.uuid4()))
            result = self.app.AsyncResult(holder.options["task_id"], parent=parent)
            results.append(result)
            parent = result
        first, rest = tasks[0], tasks[1:]
        first.apply_async(args, kwargs, chain=list(reversed(rest)) or None, **options)
        return results[-1]

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        result = None
        for i, task in enumerate(_upgrade_groups(self.tasks)):
            result = task.apply(
                args if i == 0 else (result.get(),), kwargs if i == 0 else None, **options
            )
        return result

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)


def _upgrade_groups(tasks: list[Signature]) -> list[Signature]:
    """In a chain, a group followed by another step becomes a chord (as in Celery)."""
    out: list[Signature] = []
    i = 0
    while i < len(tasks):
        t = tasks[i]
        if isinstance(t, group) and i + 1 < len(tasks):
            out.append(chord(t, tasks[i + 1]))
            i += 2
            continue
        out.append(t)
        i += 1
    return out


class group(Signature):  # noqa: N801 - Celery's name
    """Run tasks in parallel; ``GroupResult`` collects their results in order."""

    def __init__(self, *tasks: Any, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict) and hasattr(tasks[0], "__iter__"):
            tasks = tuple(tasks[0])
        sigs = [signature(t) for t in tasks]
        super().__init__("celery.group", (), {"tasks": sigs}, options, subtask_type="group")
        self._app = options.pop("app", None) or (sigs[0]._app if sigs else None)

    @property
    def tasks(self) -> list[Signature]:
        return list(self["kwargs"]["tasks"])

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        from .result import GroupResult

        group_id = options.pop("group_id", None) or str(uuid.uuid4())
        results = [
            t.apply_async(args, kwargs, group_id=group_id, group_index=i, **options)
            for i, t in enumerate(self.tasks)
        ]
        return GroupResult(group_id, results, app=self.app)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        from .result import GroupResult

        return GroupResult(
            str(uuid.uuid4()), [t.apply(args, kwargs) for t in self.tasks], app=self.app
        )

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def __or__(self, other: Any) -> Any:
        """``group | task`` becomes a chord, as in Celery."""
        if isinstance(other, group):
            other = chain(other)
        if isinstance(other, chain):
            return chain(chord(self, other.tasks[0]), *other.tasks[1:])
        return chord(self, other)


class chord(Signature):  # noqa: N801 - Celery's name
    """A header group whose results, in order, are passed to the body once all are done."""

    def __init__(
        self, header: Any, body: Any = None, task_id: str | None = None, **options: Any
    ) -> None:
        tasks = header.tasks if isinstance(header, group) else [signature(t) for t in header]
        app = options.pop("app", None)
        if isinstance(body, dict) and not isinstance(body, Signature):
            body = _from_dict(body, app)
        super().__init__(
            "celery.chord", (), {"header": tasks, "body": body}, options, subtask_type="chord"
        )
        self._app = app or (tasks[0]._app if tasks else getattr(body, "_app", None))

    @property
    def tasks(self) -> list[Signature]:
        return list(self["kwargs"]["header"])

    @property
    def body(self) -> Any:
        return self["kwargs"]["body"]

    def __call__(self, body: Any = None, **options: Any) -> Any:
        return self.apply_async((), {}, body=body, **options)

    def apply_async(
        self, args: Any = None, kwargs: Any = None, body: Any = None, **options: Any
    ) -> Any:
        from .result import GroupResult

        body = signature(body or self.body)
        app = self.app
        if app.conf.task_always_eager:
            return self.apply(args, kwargs, body=body, **options)
        header = [t.clone() for t in self.tasks]
        group_id = options.pop("group_id", None) or str(uuid.uuid4())
        body = body.clone()
        body_id = body.options.setdefault("task_id", str(uuid.uuid4()))
        if not header:
            return body.apply_async(([],) if not body.immutable else ())
        body.options["chord_size"] = len(header)
        results = [
            t.apply_async(args, kwargs, group_id=group_id, group_index=i, chord=body, **options)
            for i, t in enumerate(header)
        ]
        return app.AsyncResult(body_id, parent=GroupResult(group_id, results, app=app))

    def apply(self, args: Any = None, kwargs: Any = None, body: Any = None, **options: Any) -> Any:
        body = signature(body or self.body)
        values = [t.apply(args, kwargs).get() for t in self.tasks]
        return body.apply((values,) if not body.immutable else ())

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)


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


class xmap(_Mapper):  # noqa: N801 - Celery's name
    builtin = "celery.map"


class xstarmap(_Mapper):  # noqa: N801 - Celery's name
    builtin = "celery.starmap"


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


_chain = chain


__all__ = [
    "StampingVisitor",
    "Signature",
    "chain",
    "chord",
    "chunks",
    "group",
    "maybe_signature",
    "signature",
    "subtask",
    "xmap",
    "xstarmap",
]
