"""cProfile reports of celery_docket workers and clients: hot spots per task or round trip."""

from __future__ import annotations

import io
import os
from typing import Any

from benchmarks.comparebench.common import (
    Failed,
)

HOT: dict[str, tuple[str, str]] = {  # label: (file suffix or "~" for builtins, function)
    "socket sendall (commands sent)": ("~", "<method 'sendall' of '_socket.socket' objects>"),
    "socket recv_into (waiting for replies)": (
        "~",
        "<method 'recv_into' of '_socket.socket' objects>",
    ),
    "socket connect (new connections)": ("~", "<method 'connect' of '_socket.socket' objects>"),
    "time.sleep": ("~", "<built-in method time.sleep>"),
    "json.loads": ("json/__init__.py", "loads"),
    "inspect.Signature.bind": ("inspect.py", "_bind"),
}


def glob_prof(directory: str) -> list[str]:
    return sorted(os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".prof"))


def profile_report(files: list[str], units: int, unit: str, label: str) -> dict[str, Any]:
    """Top 25 by tottime and cumulative, and a few hot spots per ``unit``."""
    import pstats

    if not files:
        raise Failed("no profile was written")
    buf = io.StringIO()
    stats = pstats.Stats(*files, stream=buf)
    stats.sort_stats("tottime").print_stats(25)
    text = buf.getvalue()
    total = next((ln.strip() for ln in text.splitlines() if "function calls" in ln), "")
    top = text[text.find("   ncalls") :] if "   ncalls" in text else text
    buf2 = io.StringIO()
    pstats.Stats(*files, stream=buf2).sort_stats("cumulative").print_stats(25)
    cum = buf2.getvalue()
    cum = cum[cum.find("   ncalls") :] if "   ncalls" in cum else cum
    hot = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for name, (suffix, function) in HOT.items():
        calls, tt = 0, 0.0
        for (filename, _line, func), (_cc, nc, t, _ct, _callers) in raw.items():
            if func == function and filename.endswith(suffix):
                calls += nc
                tt += t
        if calls:
            hot[name] = {"calls_per_unit": calls / units, "us_per_unit": tt / units * 1e6}
    return {
        "label": label,
        "unit": unit,
        "units": units,
        "files": len(files),
        "total": total,
        "hot": hot,
        "top25_tottime": top,
        "top25_cumulative": cum,
    }


def render_profile(name: str, prof: dict[str, Any]) -> str:
    out = [f"cProfile, {name} ({prof['label']}; {prof['total']}), per {prof['unit']}:"]
    for key, v in prof["hot"].items():
        out.append(f"  {key:<40} {v['calls_per_unit']:6.2f} calls  {v['us_per_unit']:8.1f} us")
    out.append("top 25 by tottime:")
    out.append(prof["top25_tottime"].rstrip())
    return "\n".join(out)
