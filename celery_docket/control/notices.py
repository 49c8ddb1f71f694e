"""The control notice: what ``app.control`` publishes on ``<prefix>:control``.

One JSON object per command: ``cmd`` (the command name), ``args`` (its arguments),
``destination`` (node names, or null for every worker) and ``sent`` (epoch seconds). The
receiving end is ``worker/mailbox.py``; every sender builds the notice here so the shape is
written once.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .nodes import destinations

__all__ = ["encode_notice"]


def encode_notice(command: str, arguments: dict[str, Any], destination: Any) -> str:
    """The notice of ``command`` for the nodes ``destination`` names (all when empty)."""
    return json.dumps(
        {
            "cmd": command,
            "args": arguments,
            "destination": destinations(destination),
            "sent": time.time(),
        }
    )
