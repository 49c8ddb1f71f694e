"""Summaries the tables are made of: median [min-max] over repetitions, percentiles."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]; NaN for no values."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(runs: Sequence[float | None]) -> dict[str, Any]:
    """Median, min and max of the repetitions, skipping failed ones (None or NaN)."""
    clean = [r for r in runs if r is not None and r == r]
    if not clean:
        return {"runs": list(runs), "median": None, "min": None, "max": None}
    return {
        "runs": list(runs),
        "median": statistics.median(clean),
        "min": min(clean),
        "max": max(clean),
    }


def fmt(s: dict[str, Any] | None, spec: str = ",.0f") -> str:
    """``median [min-max]`` of a :func:`summary`, or n/a."""
    if not s or s.get("median") is None:
        return "n/a"
    return f"{s['median']:{spec}} [{s['min']:{spec}}-{s['max']:{spec}}]"


def fmt_ratio(s: dict[str, Any] | None) -> str:
    """A ratio summary as ``1.23x [1.10-1.40]`` (one decimal from 10x up)."""
    if not s or s.get("median") is None:
        return "n/a"
    m = s["median"]
    spec = ".1f" if m >= 10 else ".2f"
    return f"{m:{spec}}x [{s['min']:{spec}}-{s['max']:{spec}}]"
