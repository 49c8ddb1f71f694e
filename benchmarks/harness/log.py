"""Progress lines on stderr, stamped with the time since the benchmark started."""

from __future__ import annotations

import sys
import time

T0 = time.monotonic()
"""When the benchmark started (this module's import)."""


def progress(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)
