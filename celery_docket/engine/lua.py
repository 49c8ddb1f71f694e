"""Calling Lua scripts by SHA in one round trip, pipelined or not.

redis-py's ``Script`` objects add a ``SCRIPT EXISTS`` round trip to every pipeline that holds
one; these helpers send ``EVALSHA`` directly and load a script only when Redis says it lost
it (a restart or ``SCRIPT FLUSH``), re-sending just the commands that failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

Arg = str | bytes | int | float


class Script:
    """One Lua script, called by SHA."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client: Any, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


def _is_noscript(reply: Any) -> bool:
    return isinstance(reply, NoScriptError) or (
        isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT")
    )


class Pipeline:
    """A non-transactional pipeline that may hold script calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pipe = client.pipeline(transaction=False)
        self._scripts: dict[int, tuple[Script, Sequence[str], Sequence[Arg]]] = {}
        self._count = 0

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> None:
        self._scripts[self._count] = (script, keys, args)
        self.pipe.evalsha(script.sha, len(keys), *keys, *args)
        self._count += 1

    def command(self, name: str, *args: Any, **kwargs: Any) -> None:
        getattr(self.pipe, name)(*args, **kwargs)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def execute(self) -> list[Any]:
        """Send everything; re-send script calls Redis did not know; raise the first error."""
        if not self._count:
            return []
        replies = list(self.pipe.execute(raise_on_error=False))
        for index, reply in enumerate(replies):
            if index in self._scripts and _is_noscript(reply):
                script, keys, args = self._scripts[index]
                replies[index] = script(self.client, keys, args)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
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
