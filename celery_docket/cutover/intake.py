"""The worker's side of a rolling deploy: warn about Celery's backlog, optionally take it in.

:func:`attach` is called once by the worker at start-up. It always looks at Celery's lists for
the queues the worker serves and warns when messages wait there. With ``docket_celery_intake``
(``worker --celery-intake``) it also starts one thread in the worker's main process (the
prefork supervisor, for prefork) that keeps moving those messages into our streams, and
orphaned reserved ones every ``UNACKED_EVERY`` seconds. kombu's lists cannot notify, so an
idle intake polls their lengths (one pipelined ``LLEN`` per poll); it never pops a message
except inside the atomic move.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from .. import signals
from .move import Census, Mover

log = logging.getLogger("celery_docket.cutover")

POLL_SECONDS = 0.25
UNACKED_EVERY = 5.0
LOG_EVERY = 10.0


def backlog_hint(app: Any, queues: list[str], mover: Mover | None = None) -> str | None:
    """A warning naming what waits in Celery's lists for ``queues``, or None."""
    own = mover is None
    mover = mover or Mover(app)
    try:
        counts = {q: n for q, n in mover.ready_counts(queues).items() if n}
    except redis.ResponseError:  # an ACL user without access to Celery's lists: no check
        return None
    finally:
        if own:
            mover.docket.close()
    if not counts:
        return None
    listed = ", ".join(f"{q!r}: {n}" for q, n in sorted(counts.items()))
    return (
        f"{sum(counts.values())} message(s) wait in Celery's Redis lists for queues this app "
        f"serves ({listed}); celery_docket workers do not run them unless started with "
        "--celery-intake. Move them now with `celery-docket -A <app> migrate` "
        "(`migrate --dry-run` to count them first)."
    )


class Intake:
    """A thread moving Celery's messages for ``queues`` into ours until stopped."""

    def __init__(self, app: Any, queues: list[str], mover: Mover | None = None) -> None:
        self.app = app
        self.queues = list(queues)
        self.mover = mover or Mover(app)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.moved = 0

    def start(self) -> Intake:
        self._thread = threading.Thread(target=self._run, name="celery-intake", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        last_unacked = last_log = 0.0
        logged = 0
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                now = time.monotonic()
                busy = [q for q, n in self.mover.ready_counts(self.queues).items() if n]
                moved = 0
                if busy:
                    moved += self.mover.drain(busy, unacked=False, limit=2000).total
                if now - last_unacked >= UNACKED_EVERY:
                    last_unacked = now
                    moved += self.mover.drain_unacked(self.queues, full=False).total
                self.moved += moved
                if self.moved > logged and now - last_log >= LOG_EVERY:
                    log.info("moved %d message(s) from Celery's queues", self.moved - logged)
                    logged, last_log = self.moved, now
                delay = 0.0 if moved else POLL_SECONDS
            except Exception as exc:  # noqa: BLE001 - Redis down for a while: keep trying, say why
                log.warning("Celery intake: %s: %s", type(exc).__name__, exc)
                delay = 1.0
        log.info("Celery intake stopped after moving %d message(s)", self.moved)


def attach(controller: Any) -> Intake | None:
    """Worker start-up: warn about Celery's backlog; start the intake when it is enabled."""
    app, queues = controller.app, list(controller.queues)
    if not queues or str(app.broker_url).startswith("memory"):
        return None
    enabled = bool(app.conf.get("docket_celery_intake"))
    try:
        mover = Mover(app)
        if not enabled:
            try:
                hint = backlog_hint(app, queues, mover)
            finally:
                mover.docket.close()
            if hint:
                log.warning(hint)
            return None
    except Exception as exc:  # noqa: BLE001 - the warning must never keep a worker from starting
        log.debug("could not look at Celery's lists: %s", exc)
        return None
    intake = Intake(app, queues, mover).start()
    log.info(
        "Celery intake on for %s (reserved messages taken after %.0f s)", queues, mover.unacked_age
    )

    def stop(sender: Any = None, **_kw: Any) -> None:
        if sender is controller:
            intake.stop()
            intake.mover.docket.close()
            signals.worker_shutdown.disconnect(stop)

    signals.worker_shutdown.connect(stop, weak=False)
    return intake


__all__ = ["Census", "Intake", "attach", "backlog_hint"]
