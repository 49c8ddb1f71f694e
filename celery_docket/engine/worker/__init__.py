"""The engine worker, one module per loop: read, execute, commit, move, keep.

``core.Worker`` puts them together (see its docstring for the threads); ``state`` is what the
loops share and ``settings`` what a worker is told. Import from here.
"""

from ..keys import QueueKeys
from .core import Worker
from .keep import workers_key
from .settings import Handler, PerpetualSpec, Pool, WorkerSettings

__all__ = [
    "Handler",
    "PerpetualSpec",
    "Pool",
    "QueueKeys",
    "Worker",
    "WorkerSettings",
    "workers_key",
]
