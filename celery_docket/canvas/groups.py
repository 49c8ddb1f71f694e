"""``group`` (tasks in parallel) and ``chord`` (a group whose results feed a body).

A chord's members are frozen with the chord's group id, their index and the body, so each
one that finishes reports to the chord (``worker/chords.py``). Nested groups are flattened
into their parent, a chain counts by its last task, a nested chord by its body. The number
of members is stored once the header is sent, so a generator header is read as it is sent.
"""

from __future__ import annotations

from typing import Any

from . import chains as _chains
from .base import Signature, as_list, maybe_signature, new_id, regen


def _member(value: Any, app: Any) -> Any:
    """A header/group member as a signature; a bare task (``chord([tsum, tsum], ...)``)
    becomes its signature without arguments, as in Celery."""
    if value is not None and not isinstance(value, dict) and hasattr(value, "s"):
        return value.s()
    return maybe_signature(value, app=app)


def _tasks_of(value: Any, app: Any) -> Any:
    if isinstance(value, group):
        return [maybe_signature(t, app=app) for t in value.tasks]
    if isinstance(value, dict):
        return [maybe_signature(value, app=app)]
    if isinstance(value, (list, tuple)):
        return [_member(t, app) for t in value]
    return regen(_member(t, app) for t in value)


def _app_of(tasks: Any, fallback: Any = None) -> Any:
    if isinstance(tasks, list) and not isinstance(tasks, regen):
        for t in tasks:
            if getattr(t, "_app", None) is not None:
                return t._app
    return fallback


def chord_size(sig: Any) -> int:
    """How many results ``sig`` reports to a chord it is a member of (Celery's rules)."""
    sig = maybe_signature(sig)
    if isinstance(sig, chord):
        return chord_size(sig.body)
    if isinstance(sig, group):
        return sum(chord_size(t) for t in sig.tasks)
    if isinstance(sig, _chains._chain):
        for t in reversed(sig.tasks):
            n = chord_size(t)
            if n:
                return n
        return 0
    return 1


@Signature.register_type(name="group")
class group(Signature):  # noqa: N801 - Celery's name
    """Run tasks in parallel; ``GroupResult`` collects their results in order."""

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        tasks = [maybe_signature(t, app=app) for t in (d.get("kwargs") or {}).get("tasks") or ()]
        sig = group(tasks, app=app, **dict(d.get("options") or {}))
        sig.immutable = bool(d.get("immutable"))
        return sig

    def __init__(self, *tasks: Any, **options: Any) -> None:
        app = options.pop("app", None)
        members: Any
        if len(tasks) == 1:
            members = _tasks_of(tasks[0], app)
        else:
            members = [maybe_signature(t, app=app) for t in tasks]
        if isinstance(members, regen):
            members = list(members)
        super().__init__("celery.group", (), {"tasks": members}, options, subtask_type="group")
        self._app = app or _app_of(members)

    @property
    def tasks(self) -> list[Signature]:
        return self["kwargs"]["tasks"]

    @tasks.setter
    def tasks(self, value: Any) -> None:
        self["kwargs"]["tasks"] = list(value)

    @property
    def app(self) -> Any:
        return self._app or _app_of(self.tasks) or super().app

    def __len__(self) -> int:
        return len(self.tasks)

    def __repr__(self) -> str:
        return f"group({self.tasks!r})" if self.tasks else "group(<empty>)"

    def __call__(self, *args: Any, **options: Any) -> Any:
        return self.apply_async(args, **options)

    def __or__(self, other: Any) -> Any:
        if isinstance(other, group) and not other.tasks:
            return self
        if not isinstance(other, Signature):
            return NotImplemented
        return chord(self, body=other, app=self._app)

    def clone(self, args: Any = None, kwargs: Any = None, **opts: Any) -> Signature:
        sig = super().clone(args, kwargs, **opts)
        sig._app = self._app
        return sig

    def set_immutable(self, immutable: bool) -> None:
        for t in self.tasks:
            t.set_immutable(immutable)

    def link(self, sig: Any) -> Any:
        """Celery links a group's callback (immutable) to its first task only."""
        sig = maybe_signature(sig, app=self._app).clone().set(immutable=True)
        return self.tasks[0].link(sig)

    def link_error(self, sig: Any) -> Any:
        """Every member may fail, so each gets the errback."""
        sig = maybe_signature(sig, app=self._app)
        return tuple(t.link_error(sig.clone()) for t in self.tasks)

    def _members(self) -> list[Signature]:
        """Copies of the tasks with nested groups flattened and empty chains dropped."""
        out: list[Signature] = []
        stack = list(self.tasks)
        while stack:
            t = maybe_signature(stack.pop(0), app=self._app).clone()
            if isinstance(t, group) and not isinstance(t, chord):
                stack[0:0] = list(t.tasks)
            elif isinstance(t, _chains._chain) and not t.tasks:
                continue
            else:
                out.append(t)
        return out

    def _freeze_members(
        self,
        group_id: str,
        chord: Any = None,
        root_id: str | None = None,
        parent_id: str | None = None,
    ) -> list[Any]:
        members = self._members()
        results = [
            t.freeze(
                group_id=group_id,
                chord=chord,
                root_id=root_id,
                parent_id=parent_id,
                group_index=i,
            )
            for i, t in enumerate(members)
        ]
        self.tasks = members
        return results

    def freeze(
        self,
        _id: str | None = None,
        group_id: str | None = None,
        chord: Any = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        group_index: int | None = None,
    ) -> Any:
        from ..result import GroupResult

        opts = self.options
        gid = opts.get("task_id") or _id or new_id()
        opts["task_id"] = gid
        # inside a chord header the members report to the chord's group
        results = self._freeze_members(group_id or gid, chord, root_id, parent_id)
        return GroupResult(gid, results, app=self.app)

    _freeze = freeze

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        add_to_parent: bool = True,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        **options: Any,
    ) -> Any:
        from ..result import GroupResult

        if link is not None:
            raise TypeError("Cannot add link to group: use a chord")
        if link_error is not None:
            raise TypeError("Cannot add link to group: do that on individual tasks")
        options = {k: v for k, v in options.items() if v is not None}
        app = self.app
        if app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)
        if not self.tasks:
            return self.freeze()
        opts = dict(self.options, **options)
        group_id = opts.pop("task_id", None) or new_id()
        outer_group = opts.pop("group_id", None)
        opts.pop("group_index", None)
        chord_body = opts.pop("chord", None)
        root_id = opts.pop("root_id", None)
        opts.pop("chain", None)
        members = self._members()
        results = []
        for i, t in enumerate(members):
            frozen = "task_id" in t.options
            res = t.freeze(
                group_id=outer_group or group_id,
                chord=chord_body,
                root_id=root_id,
                group_index=t.options.get("group_index", i) if frozen else i,
            )
            t.apply_async(args, kwargs, **opts)
            results.append(res)
        result = GroupResult(group_id, results, app=app)
        if len(result.results) == 1 and isinstance(result.results[0], GroupResult):
            result = result.results[0]
        return result

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        from ..result import GroupResult

        group_id = self.options.get("task_id") or new_id()
        members = self._members()
        return GroupResult(group_id, [t.apply(args, kwargs) for t in members], app=self.app)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def skew(self, start: float = 1.0, stop: float | None = None, step: float = 1.0) -> group:
        value = start
        for t in self.tasks:
            t.set(countdown=value)
            value = value + step if stop is None or value + step <= stop else value
        return self


def _link_error_to_group_body(sig: Any, errback: Any, as_group: bool = True) -> None:
    """A chord's ``link_error`` option on its group body, as Celery links it: on each task
    (a chord's body, not its header); a group with a ``link_error`` option of its own (which
    replaces its tasks' errbacks when it runs) gets it there instead."""
    if isinstance(sig, chord):
        if sig.body is not None:
            _link_error_to_group_body(sig.body, errback)
    elif isinstance(sig, group):
        if as_group and sig.options.get("link_error") is not None:
            sig.append_to_list_option("link_error", errback.clone())
        else:
            for task in sig.tasks:
                _link_error_to_group_body(task, errback, as_group=False)
    else:
        sig.link_error(errback.clone())


@Signature.register_type(name="chord")
class chord(Signature):  # noqa: N801 - Celery's name
    """A header group whose results, in order, are passed to the body once all are done."""

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        kw = dict(d.get("kwargs") or {})
        sig = chord(
            kw.pop("header", None) or [],
            kw.pop("body", None),
            app=app,
            kwargs=kw.get("kwargs"),
            **dict(d.get("options") or {}),
        )
        sig["args"] = tuple(d.get("args") or ())
        sig.immutable = bool(d.get("immutable"))
        return sig

    def __init__(
        self,
        header: Any,
        body: Any = None,
        task: str = "celery.chord",
        args: Any = None,
        kwargs: Any = None,
        app: Any = None,
        **options: Any,
    ) -> None:
        tasks = _tasks_of(header, app)
        body = maybe_signature(body, app=app)
        super().__init__(
            task,
            args,
            {"kwargs": dict(kwargs or {}), "header": tasks, "body": body},
            options,
            subtask_type="chord",
        )
        self._app = app or _app_of(tasks) or getattr(body, "_app", None)

    @property
    def tasks(self) -> Any:
        return self["kwargs"]["header"]

    @tasks.setter
    def tasks(self, value: Any) -> None:
        self["kwargs"]["header"] = value

    @property
    def body(self) -> Any:
        return self["kwargs"]["body"]

    @body.setter
    def body(self, value: Any) -> None:
        self["kwargs"]["body"] = value

    @property
    def app(self) -> Any:
        if self._app is not None:
            return self._app
        if isinstance(self.tasks, list) and not isinstance(self.tasks, regen):
            found = _app_of(self.tasks)
            if found is not None:
                return found
        return getattr(self.body, "_app", None) or super().app

    def __repr__(self) -> str:
        if self.body is not None:
            return f"%{self.body.reprcall(self.tasks)}"
        return f"<chord without body: {self.tasks!r}>"

    def __length_hint__(self) -> int:
        return sum(chord_size(t) for t in self.tasks)

    def __call__(self, body: Any = None, **options: Any) -> Any:
        return self.apply_async((), {"body": body} if body else {}, **options)

    def __or__(self, other: Any) -> Any:
        if isinstance(other, Signature) and not isinstance(other, (group, _chains._chain)):
            sig: Any = self.clone()
            sig.body = sig.body | other if sig.body is not None else other
            return sig
        if isinstance(other, group) and len(other.tasks) == 1:
            sig = self.clone()
            sig.body = sig.body | other.tasks[0]
            return sig
        return super().__or__(other)

    def clone(self, args: Any = None, kwargs: Any = None, **opts: Any) -> Signature:
        if isinstance(self.tasks, regen) and not self.tasks.fully_consumed:
            # a generator header is read once, when the chord is sent
            sig: Signature = chord(self.tasks, self.body.clone() if self.body is not None else None)
            sig["options"] = dict(self.options, **opts)
            sig["args"] = tuple(args or ()) + self.args
            sig._app = self._app
            return sig
        sig = super().clone(args, kwargs, **opts)
        sig._app = self._app
        return sig

    def set_immutable(self, immutable: bool) -> None:
        for t in self.tasks:
            t.set_immutable(immutable)

    def link(self, callback: Any) -> Any:
        """A chord's callback is the body's."""
        self.body.link(callback)
        return callback

    def link_error(self, errback: Any) -> Any:
        """A chord's errback goes to its body (and to nested chords in the header)."""
        errback = maybe_signature(errback, app=self._app)
        if self.app.conf.get("task_allow_error_cb_on_chord_header"):
            for t in self.tasks:
                t.link_error(errback.clone(immutable=True))
        else:
            for t in self.tasks:
                if isinstance(t, chord):
                    t.link_error(errback)
        self.body.link_error(errback)
        return errback

    def freeze(
        self,
        _id: str | None = None,
        group_id: str | None = None,
        chord: Any = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        group_index: int | None = None,
    ) -> Any:
        from ..result import GroupResult

        header = group(list(self.tasks), app=self.app, task_id=self.options.get("task_id"))
        gid = header.options.get("task_id") or new_id()
        header.options["task_id"] = gid
        self.options["task_id"] = gid
        results = header._freeze_members(gid, self.body, root_id, parent_id)
        self.tasks = header.tasks
        header_result = GroupResult(gid, results, app=self.app)
        if self.body is None:
            return header_result
        body_result = self.body.freeze(
            _id, root_id=root_id, chord=chord, group_id=group_id, group_index=group_index
        )
        _chains._root_of(body_result).parent = header_result
        return body_result

    def apply_async(
        self, args: Any = None, kwargs: Any = None, task_id: str | None = None, **options: Any
    ) -> Any:
        options = {k: v for k, v in options.items() if v is not None}
        kwargs = dict(kwargs or {})
        body = kwargs.pop("body", None) or self.body
        args = tuple(args or ()) + self.args if not self.immutable else self.args
        body = maybe_signature(body, app=self._app).clone()
        app = self.app
        if app.conf.task_always_eager:
            return self.apply(args, kwargs, body=body, **options)
        merged = dict(self.options, **options)
        task_id = task_id or merged.pop("task_id", None)
        merged.pop("task_id", None)
        return self.run(body, args, kwargs, task_id=task_id, **merged)

    def run(
        self,
        body: Signature,
        partial_args: Any,
        kwargs: Any,
        task_id: str | None = None,
        **options: Any,
    ) -> Any:
        from ..result import GroupResult
        from ..worker import chords as chord_state

        app = self.app
        options.pop("producer", None)
        header_delay: dict[str, Any] = {
            k: options.pop(k) for k in ("countdown", "eta") if k in options
        }
        for cb in as_list(options.pop("link", None)):
            body.link(cb)
        for eb in as_list(options.pop("link_error", None)):
            if isinstance(body, group):
                _link_error_to_group_body(body, maybe_signature(eb, app=app))
            else:
                body.append_to_list_option("link_error", eb)
        # a frozen chord's members already report to the id it keeps in its options
        group_id = self.options.get("task_id") or new_id()
        root_id = options.get("root_id")
        # everything else (the chain continuation, an outer chord) belongs to the body
        body.options.update({k: v for k, v in options.items() if k != "parent_id"})
        if isinstance(body, _chains._chain) and body.tasks:
            steps, _results = body.prepare_steps(
                last_task_id=task_id,
                root_id=root_id,
                group_id=body.options.get("group_id"),
                chord_body=body.options.get("chord"),
                group_index=body.options.get("group_index"),
                link_error=body.options.get("link_error"),
            )
            outer = list(body.options.get("chain") or [])
            first = steps.pop()
            first.options["chain"] = (outer + steps) or None
            for cb in as_list(body.options.get("link")):
                (steps[0] if steps else first).link(cb)
            body_result = _results[0]
            body = first
        else:
            body_result = body.freeze(task_id or new_id(), group_id=group_id, root_id=root_id)
        header_opts = {
            k: v
            for k, v in options.items()
            if k not in ("chain", "chord", "task_id", "group_id", "group_index")
        }
        header_opts.update(header_delay)
        chord_state.reset(app, group_id)
        tasks = self.tasks
        members: list[Any] = []
        results: list[Any] = []
        size = 0
        index = 0
        stack: list[Any] = []
        source = iter(tasks)
        while True:
            if stack:
                t = stack.pop(0)
            else:
                t = next(source, None)
                if t is None:
                    break
            t = maybe_signature(t, app=app).clone()
            if isinstance(t, group) and not isinstance(t, chord):
                stack[0:0] = list(t.tasks)
                continue
            if isinstance(t, _chains._chain) and not t.tasks:
                continue
            res = t.freeze(group_id=group_id, chord=body, root_id=root_id, group_index=index)
            index += 1
            size += chord_size(t)
            t.apply_async(partial_args, kwargs, **header_opts)
            members.append(t)
            results.append(res)
        header_result = GroupResult(group_id, results, app=app)
        if not members:
            body.apply_async(([],) if not body.immutable else ())
        else:
            if any(isinstance(r, GroupResult) for r in results):
                # a member ending in a group gives a list: the body's values keep that shape
                header_result.save()
            chord_state.set_size(app, group_id, size, body)
        _chains._root_of(body_result).parent = header_result
        return body_result

    def apply(self, args: Any = None, kwargs: Any = None, body: Any = None, **options: Any) -> Any:
        body = maybe_signature(body or self.body, app=self._app)
        header = group(list(self.tasks), app=self.app)
        # partial args given to the chord (a chain's first step, say) go to its header
        args = self.args if self.immutable else tuple(args or ()) + self.args
        values = header.apply(args, kwargs).get(propagate=True)
        return body.apply((values,) if not body.immutable else ())

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)
