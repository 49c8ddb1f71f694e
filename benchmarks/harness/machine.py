"""What ran a benchmark: CPUs, memory, Python, client and server versions, load, git state.

Recorded in every JSON result so two runs can be told apart before their numbers are compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
"""The repository (benchmarks/harness/ -> repo)."""


def version(dist: str) -> str | None:
    """An installed distribution's version, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        return next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), "")
    return ""


def mem_total_mib() -> float | None:
    with contextlib.suppress(OSError, StopIteration), open("/proc/meminfo") as fh:
        return int(next(ln.split()[1] for ln in fh if ln.startswith("MemTotal:"))) / 1024
    return None


def loadavg() -> tuple[float, float, float] | None:
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def machine_info(r: Any, url: str, own: bool) -> dict[str, Any]:
    """The facts every benchmark records; ``r`` is a redis-py client of the server used."""
    import redis

    server = r.info("server")
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_total_mib": mem_total_mib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "redis_py": redis.__version__,
        "hiredis": version("hiredis"),
        "hiredis_parser_in_use": bool(getattr(redis.utils, "HIREDIS_AVAILABLE", False)),
        "celery_docket": version("celery-docket"),
        "redis_server": server.get("redis_version"),
        "redis_url": url.split("@")[-1],
        "redis_started_by_bench": own,
        "loadavg_start": loadavg(),
    }


def git(cmd: list[str], root: Path = ROOT) -> str | None:
    """Read-only git query in the repo; None on failure (or a non-zero exit)."""
    try:
        out = subprocess.run(
            ["git", *cmd], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def source_hash(root: Path = ROOT) -> str:
    """sha256 over celery_docket/**/*.py (path + content) under ``root``."""
    h = hashlib.sha256()
    for path in sorted((root / "celery_docket").rglob("*.py")):
        with contextlib.suppress(OSError):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]
