"""Helpers for integration tests (Celery's ``celery.contrib.testing.manager``).

:class:`Manager` waits for results and worker states the way Celery's integration suite
expects: ``join`` retries a result set until it completes, ``wait_for`` retries a probe with
a growing interval, and ``wait_until_idle`` purges the queues and waits until no task runs.
"""

from __future__ import annotations

import builtins
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, TextIO

from kombu.utils.functional import retry_over_time

from ... import states
from ...exceptions import TimeoutError

__all__ = ("Manager", "ManagerMixin", "Sentinel")

E_STILL_WAITING = "Still waiting for {0}.  Trying again {when}: {exc!r}"


class Sentinel(Exception):
    """Raised by a probe that has not seen what it waits for yet."""


class ManagerMixin:
    """Waiting and asserting on results and worker state, for an ``app``."""

    app: Any

    def _init_manager(
        self,
        block_timeout: float = 30 * 60.0,
        no_join: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.stdout = sys.stdout if stdout is None else stdout
        self.stderr = sys.stderr if stderr is None else stderr
        self.connerrors = self.app.connection().recoverable_connection_errors
        self.block_timeout = block_timeout
        self.no_join = no_join

    def remark(self, s: str, sep: str = "-") -> None:
        print(f"{sep}{s}", file=self.stdout)

    def warn(self, s: str) -> None:
        self.stderr.write(s + "\n")

    def missing_results(self, r: Sequence[Any]) -> list[str]:
        """Ids of the results in ``r`` that have not been stored yet."""
        return [res.id for res in r if not res.ready()]

    def wait_for(
        self,
        fun: Callable[..., Any],
        catch: Sequence[type[BaseException]],
        desc: str = "thing",
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        errback: Callable[..., Any] | None = None,
        max_retries: int = 10,
        interval_start: float = 0.1,
        interval_step: float = 0.5,
        interval_max: float = 5.0,
        emit_warning: bool = False,
        **options: Any,
    ) -> Any:
        """Call ``fun`` until it stops raising one of ``catch``; the last error propagates."""

        def on_error(exc: BaseException, intervals: Iterator[float], retries: int) -> float:
            interval = next(intervals)
            if emit_warning:
                self.warn(E_STILL_WAITING.format(desc, when=f"in {interval:.2f}s", exc=exc))
            if errback:
                errback(exc, interval, retries)
            return interval

        return self.retry_over_time(
            fun,
            catch,
            args=args,
            kwargs=kwargs or {},
            errback=on_error,
            max_retries=max_retries,
            interval_start=interval_start,
            interval_step=interval_step,
            interval_max=interval_max,
            **options,
        )

    def ensure_not_for_a_while(
        self,
        fun: Callable[..., Any],
        catch: Sequence[type[BaseException]],
        desc: str = "thing",
        max_retries: int = 20,
        interval_start: float = 0.1,
        interval_step: float = 0.02,
        interval_max: float = 1.0,
        emit_warning: bool = False,
        **options: Any,
    ) -> None:
        """Assert that ``fun`` keeps raising one of ``catch`` for a while."""
        try:
            self.wait_for(
                fun,
                catch,
                desc=desc,
                max_retries=max_retries,
                interval_start=interval_start,
                interval_step=interval_step,
                interval_max=interval_max,
                emit_warning=emit_warning,
            )
        except tuple(catch):
            return
        raise AssertionError(f"Should not have happened: {desc}")

    def retry_over_time(self, *args: Any, **kwargs: Any) -> Any:
        return retry_over_time(*args, **kwargs)

    def join(self, r: Any, propagate: bool = False, max_retries: int = 10, **kwargs: Any) -> Any:
        """Wait for every result of ``r`` (one result or a set), retrying on timeouts."""
        if self.no_join:
            return None
        if not hasattr(r, "results"):
            r = self.app.ResultSet([r])
        received: list[str] = []

        def on_result(task_id: str, value: Any) -> None:
            received.append(task_id)

        attempt = 0
        while not max_retries or attempt < max_retries:
            attempt += 1
            received[:] = []
            try:
                return r.get(callback=on_result, propagate=propagate, **kwargs)
            except (builtins.TimeoutError, TimeoutError) as exc:
                waiting = self.missing_results(r)
                self.remark(
                    f"Still waiting for {len(r) - len(received)}/{len(r)}: "
                    f"[{', '.join(waiting)[:200]}]: {exc!r}",
                    "!",
                )
            except self.connerrors as exc:
                self.remark(f"join: connection lost: {exc!r}", "!")
        raise AssertionError("Test failed: Missing task results")

    def inspect(self, timeout: float = 3.0) -> Any:
        return self.app.control.inspect(timeout=timeout)

    def query_tasks(self, ids: Sequence[str], timeout: float = 0.5) -> Iterator[Any]:
        tasks = self.inspect(timeout).query_task(*ids) or {}
        yield from tasks.items()

    def query_task_states(self, ids: Sequence[str], timeout: float = 0.5) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for _hostname, reply in self.query_tasks(ids, timeout=timeout):
            for task_id, (state, _info) in reply.items():
                found[state].add(task_id)
        return found

    def assert_accepted(
        self,
        ids: Sequence[str],
        interval: float = 0.5,
        desc: str = "waiting for tasks to be accepted",
        **policy: Any,
    ) -> Any:
        return self.assert_task_worker_state(
            self.is_accepted, ids, interval=interval, desc=desc, **policy
        )

    def assert_received(
        self,
        ids: Sequence[str],
        interval: float = 0.5,
        desc: str = "waiting for tasks to be received",
        **policy: Any,
    ) -> Any:
        return self.assert_task_worker_state(
            self.is_received, ids, interval=interval, desc=desc, **policy
        )

    def assert_result_tasks_in_progress_or_completed(
        self,
        async_results: Sequence[Any],
        interval: float = 0.5,
        desc: str = "waiting for tasks to be started or completed",
        **policy: Any,
    ) -> Any:
        return self.assert_task_state_from_result(
            self.is_result_task_in_progress, async_results, interval=interval, desc=desc, **policy
        )

    def assert_task_state_from_result(
        self, fun: Callable[..., Any], results: Sequence[Any], interval: float = 0.5, **policy: Any
    ) -> Any:
        return self.wait_for(
            partial(self.true_or_raise, fun, results, timeout=interval), (Sentinel,), **policy
        )

    @staticmethod
    def is_result_task_in_progress(results: Sequence[Any], **kwargs: Any) -> bool:
        return all(r.state in (states.STARTED, states.SUCCESS) for r in results)

    def assert_task_worker_state(
        self, fun: Callable[..., Any], ids: Sequence[str], interval: float = 0.5, **policy: Any
    ) -> Any:
        return self.wait_for(
            partial(self.true_or_raise, fun, ids, timeout=interval), (Sentinel,), **policy
        )

    def is_received(self, ids: Sequence[str], **kwargs: Any) -> bool:
        return self._ids_matches_state(["reserved", "active", "ready"], ids, **kwargs)

    def is_accepted(self, ids: Sequence[str], **kwargs: Any) -> bool:
        return self._ids_matches_state(["active", "ready"], ids, **kwargs)

    def _ids_matches_state(
        self, expected_states: Sequence[str], ids: Sequence[str], timeout: float = 0.5
    ) -> bool:
        found = self.query_task_states(ids, timeout=timeout)
        return all(any(t in found[k] for k in expected_states) for t in ids)

    def true_or_raise(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        res = fun(*args, **kwargs)
        if not res:
            raise Sentinel()
        return res

    def wait_until_idle(self, timeout: float = 60.0) -> None:
        """Purge the queues, then wait until no worker runs a task (at most ``timeout`` s)."""
        control = self.app.control
        deadline = time.monotonic() + timeout
        while control.purge() and time.monotonic() < deadline:
            pass
        inspect = control.inspect()
        while time.monotonic() < deadline:
            active = inspect.active() or {}
            if sum(len(tasks) for tasks in active.values()) == 0:
                return
            time.sleep(0.05)
        raise TimeoutError(f"workers still busy after {timeout} s")


class Manager(ManagerMixin):
    """Test helpers for task integration tests."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self.app = app
        self._init_manager(**kwargs)
