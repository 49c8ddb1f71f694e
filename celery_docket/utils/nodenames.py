"""``celery.utils.nodenames``: worker node names (``name@host``) and ``%h``-style templates."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Any

__all__ = (
    "anon_nodename",
    "default_nodename",
    "gethostname",
    "host_format",
    "node_format",
    "nodename",
    "nodesplit",
    "worker_direct",
)

NODENAME_SEP = "@"
NODENAME_DEFAULT = "celery"


@lru_cache(maxsize=1)
def gethostname() -> str:
    """The host name, looked up once per process."""
    return socket.gethostname()


def nodename(name: str, hostname: str) -> str:
    return f"{name}{NODENAME_SEP}{hostname}"


def anon_nodename(hostname: str | None = None, prefix: str = "gen") -> str:
    """A node name for a process that is not a worker (``gen1234@host``)."""
    return nodename(f"{prefix}{os.getpid()}", hostname or gethostname())


def nodesplit(name: str) -> tuple[None, str] | tuple[str, str]:
    """``"w1@host"`` -> ``("w1", "host")``; ``"host"`` -> ``(None, "host")``."""
    head, sep, tail = name.partition(NODENAME_SEP)
    return (head, tail) if sep else (None, head)


def default_nodename(hostname: str | None) -> str:
    """``name@host`` from a ``-n`` value: a missing name is ``celery``, a missing host ours."""
    value = hostname or ""
    name, sep, host = value.partition(NODENAME_SEP)
    if not sep:
        name, host = "", value
    return nodename(name or NODENAME_DEFAULT, host or gethostname())


def host_format(
    template: str, hostname: str | None = None, name: str | None = None, **extra: Any
) -> str:
    """Expand Celery's ``%h`` (full host), ``%n`` (host without domain), ``%d`` (domain).

    ``%%`` is a literal percent sign; unknown ``%x`` sequences are left as they are; extra
    keyword arguments add keys (``%i`` for a pool index, say).
    """
    host = hostname or gethostname()
    short, _, domain = host.partition(".")
    keys = {
        "h": host,
        "n": name or short,
        "d": domain,
        "%": "%",
        **{k: str(v) for k, v in extra.items()},
    }
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "%" and i + 1 < len(template) and template[i + 1] in keys:
            out.append(keys[template[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def node_format(template: str, name: str, **extra: Any) -> str:
    """``host_format`` for a full node name: ``%h`` is the host part of ``name``."""
    shortname, host = nodesplit(name)
    return host_format(template, host, shortname or None, **extra)


def worker_direct(hostname: Any) -> Any:
    """Celery's per-worker direct queue; this engine has none (use ``-Q`` instead)."""
    raise NotImplementedError(
        "celery_docket has no per-worker direct queues (worker_direct); give the worker its "
        "own queue with -Q and route to it instead"
    )
