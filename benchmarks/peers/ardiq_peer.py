"""ardiq: not installable here (no distribution on PyPI for Python 3.11), so always skipped.

It stays in the list so the table says why it is missing; when a wheel appears, this module
gets the same ``noop``/``echo`` app and drain functions as the others.
"""

from __future__ import annotations

import ardiq  # noqa: F401 - raises ImportError where ardiq is not installed

DIST = "ardiq"
LABEL = "ardiq"
raise ImportError("ardiq is importable but not wired into the bench yet")
