"""``inspect report`` and ``celery-docket report``: what to paste into a bug report.

Versions, platform, transport and the settings the app changed, with URLs redacted and
anything that looks like a secret masked, so the text is safe to paste in public.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from typing import Any

from ..utils.urls import redact_url
from .shapes import broker_info

__all__ = ["report_text"]

_SECRET = re.compile(r"(?i)(password|secret|token|key|credential|pass|auth)")


def _mask(name: str, value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    if _SECRET.search(name) and value and name not in ("docket_key_prefix",):
        return "********"
    return value


def report_text(app: Any) -> str:
    """What to paste into a bug report: versions, platform, transport and changed settings."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "-"

    server = "-"
    try:
        info = app.docket.redis.info("server")
        server = str(info.get("redis_version", "-"))
    except Exception:  # noqa: BLE001 - a report must not fail
        pass
    conf = app.conf
    results = conf.get("result_backend") or f"{app.broker_url} (the broker)"
    lines = [
        "",
        f"software -> celery-docket:{__version__} py:{platform.python_version()}"
        f" redis-py:{v('redis')} kombu:{v('kombu')} redis-server:{server}",
        f"platform -> system:{platform.system()} arch:{platform.machine()}"
        f" kernel:{platform.release()} imp:{platform.python_implementation()}",
        f"app      -> {app.main or '__main__'} prefix:{app.docket.prefix} pid:{os.getpid()}",
        f"settings -> transport:{broker_info(app)['transport']} results:{_mask('result_backend', str(results))}",
        "",
    ]
    changes = getattr(conf, "_changes", {})
    for name in sorted(changes):
        lines.append(f"{name}: {_mask(name, changes[name])!r}")
    if "broker_url" not in changes:
        lines.append(f"broker_url: {_mask('broker_url', app.broker_url)!r}")
    lines.append(f"python: {sys.executable}")
    return "\n".join(lines) + "\n"
