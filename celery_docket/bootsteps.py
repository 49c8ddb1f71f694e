"""``celery.bootsteps``: importable and subclassable; custom worker steps are not run.

Celery projects add steps to ``app.steps["worker"]``/``["consumer"]`` (a liveness-probe file,
a custom consumer). This worker has no blueprint to run them in, so ``app.steps[...].add``
raises NotImplementedError instead of letting the step silently never start.
"""

from __future__ import annotations

from typing import Any

__all__ = ("CLOSE", "RUN", "TERMINATE", "Blueprint", "ConsumerStep", "StartStopStep", "Step")

RUN, CLOSE, TERMINATE = 0x1, 0x2, 0x3

STEPS_WHY = (
    "celery_docket does not run worker bootsteps ({what}): use the worker_ready / "
    "worker_shutdown / worker_process_init signals, and for liveness probes "
    "`celery-docket inspect ping` or `status` (answered from Redis heartbeats)"
)


class Step:
    """Celery's bootstep base class; defining subclasses works, running them does not."""

    name: str | None = None
    requires: tuple[Any, ...] = ()
    enabled = True
    conditional = False
    last = False

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        raise NotImplementedError(STEPS_WHY.format(what=type(self).__qualname__))


class StartStopStep(Step):
    """A step with start/stop hooks."""


class ConsumerStep(StartStopStep):
    """A step that adds kombu consumers (there are none here)."""


class Blueprint:
    """Celery's step graph; refused when made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(STEPS_WHY.format(what="Blueprint"))


class RefusedSteps(set):  # type: ignore[type-arg]
    """``app.steps[...]``: reading works (empty), adding a step raises."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def _refuse(self, steps: Any) -> Any:
        names = ", ".join(getattr(s, "__qualname__", repr(s)) for s in steps)
        raise NotImplementedError(STEPS_WHY.format(what=f"app.steps[{self.kind!r}]: {names}"))

    def add(self, step: Any) -> None:
        self._refuse([step])

    def update(self, *steps: Any) -> None:
        self._refuse([s for group in steps for s in group])

    def __ior__(self, steps: Any) -> Any:  # type: ignore[misc]
        return self._refuse(list(steps))


class RefusedOptions(set):  # type: ignore[type-arg]
    """``app.user_options[...]``: extra command-line options are not added to the CLI."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def _refuse(self) -> Any:
        raise NotImplementedError(
            f"celery_docket does not add custom command-line options "
            f"(app.user_options[{self.kind!r}]): read the value from an environment "
            "variable or app.conf instead"
        )

    def add(self, option: Any) -> None:
        self._refuse()

    def update(self, *options: Any) -> None:
        self._refuse()

    def __ior__(self, options: Any) -> Any:  # type: ignore[misc]
        return self._refuse()
