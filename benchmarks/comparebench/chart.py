"""The hand-written SVG bar chart of compare.py: one group per workload, whiskers min-max."""

from __future__ import annotations

import argparse
import html
from typing import Any

from benchmarks.comparebench.bench import Bench
from benchmarks.comparebench.common import (
    COLOURS,
    LABEL,
    SYSTEMS,
)


def chart_groups(bench: Bench, args: argparse.Namespace) -> list[dict[str, Any]]:
    R = bench.results.get
    groups = []

    def add(title: str, key: str, unit: str, better: str, spec: str) -> None:
        c, d = R(f"{key}_celery"), R(f"{key}_docket")
        if not (c and d and c.get("median") is not None and d.get("median") is not None):
            return
        bars = [
            {
                "system": "celery",
                "label": LABEL["celery"],
                "value": c["median"],
                "lo": c["min"],
                "hi": c["max"],
            },
            {
                "system": "docket",
                "label": LABEL["docket"],
                "value": d["median"],
                "lo": d["min"],
                "hi": d["max"],
            },
        ]
        ratio = R(f"{key}_ratio") or {}
        groups.append(
            {"title": title, "unit": unit, "better": better, "spec": spec, "bars": bars,
             "ratio": ratio.get("median")}
        )  # fmt: skip

    add("enqueue", "enqueue", "tasks/s", "higher", ",.0f")
    add(f"drain {args.tasks // 1000}k", "drain", "tasks/s", "higher", ",.0f")
    add("delay->get p50", "latency_p50", "ms", "lower", ".2f")
    add("delay->get p99", "latency_p99", "ms", "lower", ".2f")
    add("countdown p50", "lateness_p50", "ms late", "lower", ".1f")
    add("countdown p99", "lateness_p99", "ms late", "lower", ".1f")
    add("CPU mix", "cpu", "tasks/s", "higher", ",.0f")
    add("idle RSS/proc", "rss_idle_per_proc", "MiB", "lower", ".1f")
    add("RSS/proc after drain", "rss_after_per_proc", "MiB", "lower", ".1f")
    sizes: list[tuple[int, dict[str, Any]]] = []
    for size in args.sizes:
        v = R(f"size_{size}_docket")
        if v and v.get("median") is not None:
            sizes.append((size, v))
    if sizes:
        groups.append(
            {
                "title": "drain by queue size",
                "unit": "tasks/s",
                "better": "flat",
                "spec": ",.0f",
                "ratio": None,
                "bars": [
                    {"system": "docket", "label": f"{s // 1000:,}k", "value": v["median"], "lo": v["min"], "hi": v["max"]}
                    for s, v in sizes
                ],
            }
        )  # fmt: skip
    return groups


def render_svg(groups: list[dict[str, Any]], title: str, subtitle: str) -> str:
    """One group of bars per workload, each group on its own linear scale (values labelled)."""
    esc = html.escape
    bar_w, gap, group_gap, plot_h, top, left = 46, 6, 34, 260, 124, 20
    widths = [max(100, len(g["bars"]) * (bar_w + gap) - gap) for g in groups]
    width = left * 2 + 20 + sum(widths) + group_gap * max(0, len(groups) - 1)
    width = max(width, 900)
    height = top + plot_h + 110
    base = top + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica,Arial,sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="26" font-size="17" font-weight="bold">{esc(title)}</text>',
    ]
    for i, text in enumerate(subtitle.split("\n")):
        parts.append(
            f'<text x="{left}" y="{48 + 16 * i}" font-size="12" fill="#333">{esc(text)}</text>'
        )
    lx = width - left - 300
    for j, system in enumerate(SYSTEMS):
        x = lx + j * 150
        parts.append(
            f'<rect x="{x}" y="{top - 26}" width="12" height="12" fill="{COLOURS[system]}"/>'
        )
        parts.append(
            f'<text x="{x + 17}" y="{top - 16}" font-size="12">{esc(LABEL[system])}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="#444" stroke-width="1"/>'
    )
    x = left
    for g, gw in zip(groups, widths):
        peak = max(
            max(b["hi"] if b["hi"] is not None else b["value"], b["value"]) for b in g["bars"]
        )
        peak = peak if peak > 0 else 1.0
        x0 = x + (gw - (len(g["bars"]) * (bar_w + gap) - gap)) / 2
        for k, b in enumerate(g["bars"]):
            bx = x0 + k * (bar_w + gap)
            h = max(2.0, b["value"] / peak * (plot_h - 24)) if b["value"] > 0 else 2.0
            parts.append(
                f'<rect x="{bx}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" '
                f'fill="{COLOURS[b["system"]]}"><title>{esc(b["label"])}: {b["value"]:{g["spec"]}} '
                f"{esc(g['unit'])} [{b['lo']:{g['spec']}}-{b['hi']:{g['spec']}}]</title></rect>"
            )
            if b["lo"] is not None and b["hi"] is not None and b["hi"] > b["lo"]:
                y1 = base - b["lo"] / peak * (plot_h - 24)
                y2 = base - b["hi"] / peak * (plot_h - 24)
                cx = bx + bar_w / 2
                parts.append(
                    f'<line x1="{cx}" y1="{y1:.1f}" x2="{cx}" y2="{y2:.1f}" stroke="#000" stroke-width="1"/>'
                )
            value = f"{b['value']:{g['spec']}}"
            top_y = base - h
            if b["hi"] is not None:
                top_y = min(top_y, base - b["hi"] / peak * (plot_h - 24))
            parts.append(
                f'<text x="{bx + bar_w / 2}" y="{top_y - 5:.1f}" font-size="10" '
                f'text-anchor="middle">{esc(value)}</text>'
            )
            if g["better"] == "flat":
                parts.append(
                    f'<text x="{bx + bar_w / 2}" y="{base + 13}" font-size="10" '
                    f'text-anchor="middle">{esc(b["label"])}</text>'
                )
        cx = x + gw / 2
        label_y = base + (28 if g["better"] == "flat" else 16)
        for i, text in enumerate(_wrap(g["title"], 14)):
            parts.append(
                f'<text x="{cx}" y="{label_y + 13 * i}" font-size="11" font-weight="bold" '
                f'text-anchor="middle">{esc(text)}</text>'
            )
        extra = f"{g['unit']}, {g['better']}" + (
            " = better" if g["better"] != "flat" else " = good"
        )
        if g["ratio"] is not None:
            r = g["ratio"]
            extra = f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"
            extra += f" ({g['unit']}, {g['better']}=better)"
        for i, text in enumerate(_wrap(extra, 18)):
            parts.append(
                f'<text x="{cx}" y="{label_y + 30 + 12 * i}" font-size="9.5" fill="#444" '
                f'text-anchor="middle">{esc(text)}</text>'
            )
        x += gw + group_gap
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    if cur:
        lines.append(cur)
    return lines


def chart_title(bench: Bench) -> tuple[str, str]:
    R = bench.results.get
    parts = []
    for key, name in (
        ("drain", "drain"),
        ("enqueue", "enqueue"),
        ("latency_p50", "delay->get p50"),
        ("lateness_p99", "countdown p99"),
        ("cpu", "CPU mix"),
        ("rss_idle_per_proc", "idle RSS/proc"),
    ):
        s = R(f"{key}_ratio")
        if s and s.get("median") is not None:
            m = s["median"]
            parts.append(f"{name} {m:.1f}x" if m >= 10 else f"{name} {m:.2f}x")
    verdicts = bench.verdicts()
    targets = ", ".join(f"{k} {v['verdict']}" for k, v in verdicts.items())
    title = "celery_docket / Celery 5.x: " + ", ".join(parts[:3])
    sub = "Ratios celery_docket/Celery (medians of per-rep ratios): " + ", ".join(parts)
    sub += f"\nTargets: {targets}. Each group has its own linear scale; whiskers = min-max."
    foreign = [
        v["max"]
        for k, v in bench.results.items()
        if "_foreign_" in k and isinstance(v, dict) and v.get("max") is not None
    ]
    if foreign:
        sub += (
            f"\n2 shared cores; other processes used up to {max(foreign):.2f} cores during a "
            "workload: absolute numbers drift, the ratios are what matter."
        )
    return title, sub
