"""Process control for benchmarks: spawn, read /proc, stop by pid or process group only.

Nothing here looks processes up by name: a shared machine runs other people's workers and
servers, and only what a benchmark started (and recorded by pid and start time) is signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def proc_cpu_seconds(pid: int) -> float | None:
    """user+sys CPU seconds of a live process (all its threads)."""
    rest = proc_stat(pid)
    if rest is None:
        return None
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_start(pid: int) -> int | None:
    """The start time (clock ticks since boot): with the pid, it names one process for good."""
    rest = proc_stat(pid)
    return int(rest[19]) if rest else None


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as fh:
            out.extend(int(x) for x in fh.read().split())
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen or proc_stat(p) is None:
            continue
        seen.append(p)
        todo.extend(children_of(p))
    return seen


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds of the live processes among ``pids`` (gone ones count 0)."""
    return sum(proc_cpu_seconds(p) or 0.0 for p in pids)


def status_kb(pid: int, field: str, path: str = "status") -> int:
    """A ``kB`` line of /proc/<pid>/status (or smaps_rollup); 0 if missing."""
    try:
        with open(f"/proc/{pid}/{path}") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def last_json(text: str) -> dict[str, Any]:
    """The last line of ``text`` that is a JSON object (children report that way)."""
    for line in reversed((text or "").strip().splitlines()):
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict):
                return doc
    return {}


def spawn(cmd: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """Start ``cmd`` in its own session (its own process group), so it can be stopped whole."""
    return subprocess.Popen(list(cmd), start_new_session=True, **popen)


def kill_known(known: dict[int, int | None], sig: int = signal.SIGKILL) -> None:
    """Signal each recorded process that is still the same one (same pid, same start time)."""
    for pid, start in known.items():
        if start is not None and proc_start(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def stop_tree(
    proc: subprocess.Popen[Any],
    known: dict[int, int | None] | None = None,
    timeout: float = 20.0,
    grace: float = 5.0,
) -> bool:
    """SIGTERM ``proc``, wait up to ``timeout``, then SIGKILL what is left of its tree.

    ``known`` maps the tree's pids (seen while it ran) to their start times; pool children
    that outlive their parent are killed by pid, only if still the same process. Returns
    whether the process exited on SIGTERM.
    """
    known = dict(known or {})
    for p in process_tree(proc.pid) if proc.poll() is None else []:
        known.setdefault(p, proc_start(p))
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    clean = True
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        clean = False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(st is not None and proc_start(p) == st for p, st in known.items()):
            break
        time.sleep(0.1)
    kill_known(known)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    return clean


def stop_group(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM the process group ``proc`` leads (started by :func:`spawn`), then SIGKILL it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


class ReadyChild:
    """A child that prints ``ready``, waits for ``go`` on stdin, and ends with a JSON line."""

    def __init__(self, cmd: Sequence[str], name: str = "child", **popen: Any) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            list(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, **popen
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            self.kill()
            raise RuntimeError(f"{self.name} child did not get ready (got {line!r})")

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def cpu(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> dict[str, Any]:
        """SIGTERM (a graceful stop), bounded wait, then SIGKILL; the child's JSON line."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, _ = self.proc.communicate(timeout=5)
        return last_json(out or "")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def ready_then_wait_for_go() -> bool:
    """The child's side of :class:`ReadyChild`."""
    import sys

    print("ready", flush=True)
    return sys.stdin.readline().strip() == "go"
