"""Calling Lua scripts by SHA in one round trip, pipelined or not.

redis-py's ``Script`` objects add a ``SCRIPT EXISTS`` round trip to every pipeline that holds
one; these helpers send ``EVALSHA`` directly and load a script only when Redis says it lost
it (a restart or ``SCRIPT FLUSH``), re-sending just the commands that failed.

On Redis Cluster, redis-py's cluster pipeline refuses its ``evalsha``, ``script_load`` and
``publish`` methods but routes the same commands sent through ``execute_command`` by their
keys (EVALSHA by its KEYS, so every script must declare the keys it touches), splitting the
pipeline per node. A lost script is loaded on every primary by the client itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError, TryAgainError

from .cluster import is_cluster
from .errors import NotReplicated

Arg = str | bytes | int | float


class Script:
    """One Lua script, called by SHA."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client: Any, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            try:
                return client.evalsha(self.sha, len(keys), *keys, *args)
            except NoScriptError:
                client.script_load(self.source)
                return client.evalsha(self.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            transient = _transient(exc)
            if transient is exc:
                raise
            raise transient from exc


_MIGRATING = ("Script attempted to access a non local key", "TRYAGAIN")


def _transient(exc: Exception) -> Exception:
    """A script that met a key its slot's migration already moved (it fails before writing
    anything: see scripts.py) is retried like a TRYAGAIN: the caller's loop waits and
    retries, as for a lost connection."""
    if isinstance(exc, ResponseError) and not isinstance(exc, TryAgainError):
        if any(m in str(exc) for m in _MIGRATING):
            return TryAgainError(str(exc))
    return exc


def _is_noscript(reply: Any) -> bool:
    return isinstance(reply, NoScriptError) or (
        isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT")
    )


class Pipeline:
    """A non-transactional pipeline that may hold script calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pipe = client.pipeline(transaction=False)
        self.cluster = is_cluster(client)
        self._scripts: dict[int, tuple[Script, Sequence[str], Sequence[Arg]]] = {}
        self._count = 0

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> None:
        self._scripts[self._count] = (script, keys, args)
        self.pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        self._count += 1

    def command(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "publish":  # blocked as a method of a cluster pipeline
            self.pipe.execute_command("PUBLISH", *args)
        else:
            getattr(self.pipe, name)(*args, **kwargs)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def execute(self, wait_replicas: int = 0, wait_timeout_ms: int = 0) -> list[Any]:
        """Send everything; re-send script calls Redis did not know; raise the first error.

        With ``wait_replicas``, ``WAIT`` ends each round trip: it covers only the writes of
        the connection that sends it, so it rides in the same pipeline as the writes (and in
        the re-send's own pipeline). Fewer confirmations than asked raise ``NotReplicated``.
        """
        if not self._count:
            return []
        if wait_replicas and self.cluster:
            raise ValueError(
                "docket_enqueue_wait_replicas is not supported on Redis Cluster (WAIT covers "
                "one node's writes; a pipeline spans several)"
            )
        if wait_replicas:
            self.pipe.execute_command("WAIT", wait_replicas, wait_timeout_ms)
        replies = list(self.pipe.execute(raise_on_error=False))
        acks = [replies.pop()] if wait_replicas else []
        missing = [i for i in self._scripts if _is_noscript(replies[i])]
        if missing:
            again = self.client.pipeline(transaction=False)
            if self.cluster:  # SCRIPT LOAD is refused in a cluster pipeline; load everywhere
                for source in {self._scripts[i][0].source for i in missing}:
                    self.client.script_load(source)
            for index in missing:
                script, keys, args = self._scripts[index]
                if not self.cluster:
                    again.script_load(script.source)
                again.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            if wait_replicas:
                again.execute_command("WAIT", wait_replicas, wait_timeout_ms)
            resent = list(again.execute(raise_on_error=False))
            if wait_replicas:
                acks.append(resent.pop())
            step = 1 if self.cluster else 2
            for n, index in enumerate(missing):
                replies[index] = resent[step * n + step - 1]
        for reply in replies + acks:
            if isinstance(reply, Exception):
                raise _transient(reply)
        if any(int(a) < wait_replicas for a in acks):
            raise NotReplicated(
                f"enqueued on the master, but only {min(int(a) for a in acks)} of "
                f"{wait_replicas} replicas confirmed it within {wait_timeout_ms} ms"
            )
        return replies


class Immediate:
    """The ``Pipeline`` interface executed at once: one call, no pipeline machinery."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.replies: list[Any] = []

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> None:
        self.replies.append(script(self.client, keys, args))

    def command(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.replies.append(getattr(self.client, name)(*args, **kwargs))
