"""``chain``: tasks run one after another, each getting the previous result.

Sending a chain fixes every step's id first (so the caller's result leads back through its
parents), then sends the first step with the rest in its ``chain`` message field, as Celery
does. Options given to a chain go to its first task, except ``link`` (the last task),
``link_error`` (every task) and the chord/group membership (the last task).
"""

from __future__ import annotations

from typing import Any

from . import groups as _groups
from .base import Signature, as_list, maybe_signature

# Options a chain keeps for itself when it runs; the rest go to its first task.
_RUN_OPTIONS = frozenset(
    {"chord", "group_id", "group_index", "link", "link_error", "parent_id", "root_id", "task_id"}
)


def _is_empty_group(task: Any) -> bool:
    return isinstance(task, _groups.group) and isinstance(task.tasks, list) and not task.tasks


def _unroll_single(task: Any) -> Any:
    """A group of one task is that task."""
    if isinstance(task, _groups.group) and isinstance(task.tasks, list) and len(task.tasks) == 1:
        return task.tasks[0]
    return task


def _add_step(steps: list[Signature], other: Any, app: Any) -> None:
    """Append ``other`` to ``steps`` with Celery's ``|`` rules (flatten chains, upgrade
    ``group | task`` to a chord, extend a trailing chord's body)."""
    other = maybe_signature(other, app=app)
    if isinstance(other, _chain):
        for task in other.unchain_tasks():
            _add_step(steps, task, app)
        return
    other = _unroll_single(other)
    if _is_empty_group(other):
        return
    last = steps[-1] if steps else None
    if isinstance(other, _groups.group):
        if isinstance(last, _groups.chord) and last.body is not None:
            last.body = last.body | other
        else:
            steps.append(other)
        return
    if isinstance(last, _groups.group) and not isinstance(last, _groups.chord):
        steps[-1] = _groups.chord(last, other, app=app)
    elif isinstance(last, _groups.chord) and not isinstance(other, _groups.chord):
        last.body = last.body | other if last.body is not None else other
    else:
        steps.append(other)


@Signature.register_type(name="chain")
class _chain(Signature):  # noqa: N801 - Celery's name
    """The chain signature (``celery.chain``)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        tasks = [maybe_signature(t, app=app) for t in (d.get("kwargs") or {}).get("tasks") or ()]
        sig = _chain(tasks, app=app, **dict(d.get("options") or {}))
        sig.immutable = bool(d.get("immutable"))
        return sig

    def __init__(self, *tasks: Any, **options: Any) -> None:
        app = options.pop("app", None)
        if len(tasks) == 1 and not isinstance(tasks[0], dict) and hasattr(tasks[0], "__iter__"):
            tasks = tuple(tasks[0])
        sigs = [maybe_signature(t, app=app) for t in tasks]
        super().__init__("celery.chain", (), {"tasks": sigs}, options, subtask_type="chain")
        self._app = app or next((t._app for t in sigs if getattr(t, "_app", None)), None)

    @property
    def tasks(self) -> list[Signature]:
        return self["kwargs"]["tasks"]

    @tasks.setter
    def tasks(self, value: Any) -> None:
        self["kwargs"]["tasks"] = list(value)

    def __repr__(self) -> str:
        if not self.tasks:
            return f"<{type(self).__name__}@{id(self):#x}: empty>"
        return " | ".join(repr(t) for t in self.tasks)

    def clone(self, args: Any = None, kwargs: Any = None, **opts: Any) -> Signature:
        sig = super().clone(args, kwargs, **opts)
        sig._app = self._app
        return sig

    def unchain_tasks(self) -> list[Signature]:
        """Copies of the tasks with the chain's own links moved onto them: callbacks on the
        last task, errbacks on every task."""
        tasks = [t.clone() for t in self.tasks]
        if tasks:
            for cb in as_list(self.options.get("link")):
                tasks[-1].link(cb)
            for eb in as_list(self.options.get("link_error")):
                for t in tasks:
                    t.link_error(eb)
        return tasks

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Signature):
            return NotImplemented
        steps = self.unchain_tasks()
        _add_step(steps, other, self._app)
        if len(steps) == 1 and not isinstance(other, _chain) and not self.tasks:
            return steps[0]
        return _chain(steps, app=self._app)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling a chain sends it, as Celery does."""
        if self.tasks:
            return self.apply_async(args, kwargs)
        return None

    def set_immutable(self, immutable: bool) -> None:
        self.immutable = immutable

    @property
    def app(self) -> Any:
        if self._app is not None:
            return self._app
        for t in self.tasks:
            if getattr(t, "_app", None) is not None:
                return t._app
        return super().app

    # -- preparing ---------------------------------------------------------------------------

    def _flat_steps(self, clone: bool) -> list[Signature]:
        """The steps to run: nested chains spliced in, groups before a step upgraded to
        chords, a chord's task-led chain body split into the chord and the rest."""
        steps: list[Signature] = []
        for t in self.tasks:
            t = maybe_signature(t, app=self._app)
            _add_step(steps, t.clone() if clone else t, self._app)
        if clone:
            out: list[Signature] = []
            for t in steps:
                if isinstance(t, _groups.chord) and isinstance(t.body, _chain) and t.body.tasks:
                    if not isinstance(t.body.tasks[0], _groups.group):
                        rest = t.body.unchain_tasks()
                        t.body = rest[0].clone(**_first_task_options(t.body))
                        out.append(t)
                        out.extend(rest[1:])
                        continue
                out.append(t)
            steps = out
        # as Celery's prepare_steps: a group with a step after it becomes a chord whose body
        # is that step (walking back, so g1 | g2 | t is chord(g1, chord(g2, t))); a group
        # sends no chain continuation of its own
        for i in range(len(steps) - 2, -1, -1):
            t = steps[i]
            if isinstance(t, _groups.group) and not isinstance(t, _groups.chord):
                steps[i : i + 2] = [_groups.chord(t, steps[i + 1], app=self._app)]
        return steps

    def prepare_steps(
        self,
        args: Any = None,
        kwargs: Any = None,
        root_id: str | None = None,
        link_error: Any = None,
        last_task_id: str | None = None,
        group_id: str | None = None,
        chord_body: Any = None,
        group_index: int | None = None,
        clone: bool = True,
    ) -> tuple[list[Signature], list[Any]]:
        """Freeze every step; returns (steps, results), both last step first."""
        steps = self._flat_steps(clone)
        if not steps:
            return [], []
        if args or kwargs:
            steps[0] = steps[0].clone(args, kwargs)
        n = len(steps)
        results: list[Any] = []
        frozen: list[Signature] = []
        prev_res = None
        for pos in range(n - 1, -1, -1):
            task = steps[pos]
            if pos == n - 1:
                res = task.freeze(
                    last_task_id,
                    root_id=root_id,
                    group_id=group_id,
                    chord=chord_body,
                    group_index=group_index,
                )
            else:
                res = task.freeze(root_id=root_id)
            for eb in as_list(link_error):
                task.link_error(eb)
                if isinstance(task, _groups.chord) and task.body is not None:
                    task.body.link_error(eb)
            if prev_res is not None:
                _root_of(prev_res).parent = res
            frozen.append(task)
            results.append(res)
            prev_res = res
        return frozen, results

    def freeze(
        self,
        _id: str | None = None,
        group_id: str | None = None,
        chord: Any = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        group_index: int | None = None,
    ) -> Any:
        if chord is None:
            chord = self.options.get("chord")
        if group_id is None:
            group_id = self.options.get("group_id")
        if group_index is None:
            group_index = self.options.get("group_index")
        tasks, results = self.prepare_steps(
            None,
            None,
            root_id,
            self.options.get("link_error"),
            _id or self.options.get("task_id"),
            group_id,
            chord,
            group_index,
            clone=False,
        )
        if tasks:
            for cb in as_list(self.options.get("link")):
                tasks[0].link(cb)
            self.tasks = list(reversed(tasks))
            for key in ("link", "link_error"):
                self.options.pop(key, None)
            # as in Celery, a frozen chain's id is its last task's id (run() leaves it alone:
            # here an id is an idempotency key, so a re-sent chain must not inherit it)
            self.options["task_id"] = results[0].id
        return results[0] if results else None

    # -- running -----------------------------------------------------------------------------

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        options = {k: v for k, v in options.items() if v is not None}
        app = self.app
        if app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)
        return self.run(args, kwargs, **dict(self.options, **options))

    def run(
        self,
        args: Any = None,
        kwargs: Any = None,
        group_id: str | None = None,
        chord: Any = None,
        task_id: str | None = None,
        link: Any = None,
        link_error: Any = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        group_index: int | None = None,
        **options: Any,
    ) -> Any:
        if self.immutable:
            args = ()
        tasks, results = self.prepare_steps(
            args, kwargs, root_id, link_error, task_id, group_id, chord, group_index
        )
        if not tasks:
            return None
        for cb in as_list(link):
            tasks[0].link(cb)
        first = tasks.pop()
        options.pop("producer", None)
        options.pop("publisher", None)
        outer = list(options.pop("chain", None) or [])
        if parent_id:
            options["parent_id"] = parent_id
        first_result = first.apply_async(chain=(outer + tasks) or None, **options)
        return first_result if not tasks else results[0]

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Run every step here, in order (eager)."""
        last = None
        fargs, fkwargs = tuple(args or ()), dict(kwargs or {})
        for task in self._flat_steps(clone=True):
            res = task.clone(fargs, fkwargs).apply(**({} if last is not None else options))
            res.parent, last = last, res
            value = res.get(propagate=True) if hasattr(res, "get") else res
            fargs, fkwargs = (value,), {}
        return last


def _root_of(res: Any) -> Any:
    """The first result without a parent (a chord's result leads to its header group)."""
    seen = set()
    while getattr(res, "parent", None) is not None and id(res) not in seen:
        seen.add(id(res))
        res = res.parent
    return res


def _first_task_options(chain_: Signature) -> dict[str, Any]:
    return {k: v for k, v in chain_.options.items() if k not in _RUN_OPTIONS}


class chain(_chain):  # noqa: N801 - Celery's name
    """``chain(a, b, c)``: built as ``a | b | c`` (nested chains spliced, groups upgraded)."""

    def __new__(cls, *tasks: Any, **kwargs: Any) -> Any:
        if len(tasks) == 1 and not isinstance(tasks[0], dict) and hasattr(tasks[0], "__iter__"):
            tasks = tuple(tasks[0])
        app = kwargs.get("app")
        if not tasks or set(kwargs) - {"app"}:
            return _chain(*tasks, **kwargs)
        steps: list[Signature] = []
        for t in tasks:
            _add_step(steps, t.clone() if isinstance(t, Signature) else t, app)
        return _chain(steps, **kwargs)
