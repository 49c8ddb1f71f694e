"""compare.py's text table and the machine facts it is headed with."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence
from typing import Any

from benchmarks.comparebench.bench import Bench
from benchmarks.comparebench.common import (
    LABEL,
    script,
)
from benchmarks.harness.machine import git, machine_info, source_hash, version
from benchmarks.harness.stats import fmt, fmt_ratio


def compare_machine_info(r: Any, url: str, own: bool) -> dict[str, Any]:
    """The harness's machine facts plus what this comparison depends on (Celery, git state)."""
    return machine_info(r, url, own) | {
        "celery": version("celery"),
        "kombu": version("kombu"),
        "celery_docket_cli": script("celery-docket") is not None,
        "pydocket": importlib.util.find_spec("docket") is not None,
        "git_head": git(["rev-parse", "HEAD"]),
        "celery_docket_dirty": git(["diff", "--quiet", "HEAD", "--", "celery_docket"]) is None,
        "celery_docket_source_sha256_start": source_hash(),
    }


def render(bench: Bench, machine: dict[str, Any], args: argparse.Namespace) -> str:
    R = bench.results.get
    V = bench.verdicts()
    rows: list[tuple[str, ...]] = []

    def row(label: str, key: str, spec: str = ",.0f", target: str = "", ratio: bool = True) -> None:
        rows.append(
            (
                label,
                fmt(R(f"{key}_celery"), spec),
                fmt(R(f"{key}_docket"), spec),
                fmt_ratio(R(f"{key}_ratio")) if ratio else "",
                target,
            )
        )

    def verdict(key: str) -> str:
        v = V[key]
        return f"{v['verdict']} ({v['target']})"

    n = args.tasks
    row("1 enqueue, delay() in a loop, tasks/s (higher=better)", "enqueue")
    row(
        f"2 drain {n // 1000}k no-ops, prefork -c 2, tasks/s (higher=better)",
        "drain",
        target=verdict("drain"),
    )
    row("    same, clock from the worker_ready signal", "drain_from_ready")
    row("    same, clock from the worker's spawn", "drain_from_spawn")
    row("    worker tree CPU per task, us", "drain_worker_cpu")
    row("    redis-server CPU per task, us", "drain_redis_cpu", ".1f")
    row(
        "3 delay->get p50, ms, -P solo (lower=better)", "latency_p50", ".2f", verdict("latency_p50")
    )
    row("    p99, ms", "latency_p99", ".2f")
    row(f"4 countdown=1 x{args.countdown} burst: lateness p50, ms", "lateness_p50", ".1f")
    row("    lateness p99, ms (lower=better)", "lateness_p99", ".1f", verdict("lateness_p99"))
    row("    lateness min, ms (negative = early)", "lateness_min", ".1f", ratio=False)
    row("    lateness max, ms", "lateness_max", ".1f", ratio=False)
    ec, ed = R("lateness_early_celery") or {}, R("lateness_early_docket") or {}
    rows.append(
        (
            "    early starts (before the ETA)",
            f"{ec.get('early', 'n/a')} of {ec.get('of', 'n/a')}",
            f"{ed.get('early', 'n/a')} of {ed.get('of', 'n/a')}",
            "",
            "",
        )
    )
    row(f"5 CPU mix {args.cpu_tasks} x ~5 ms, prefork -c 2, tasks/s", "cpu", ",.0f")
    row("6 idle worker RSS, tree sum, MiB", "rss_idle", ".1f")
    row(
        "    per process, MiB (lower=better)",
        "rss_idle_per_proc",
        ".1f",
        verdict("rss_idle_per_proc"),
    )
    row("    PSS tree sum (shared pages split), MiB", "pss_idle", ".1f")
    row("  RSS after the drain, tree sum, MiB", "rss_after", ".1f")
    row("    per process, MiB", "rss_after_per_proc", ".1f")
    row("    PSS tree sum, MiB", "pss_after", ".1f")
    for size in args.sizes:
        rows.append(
            (
                f"7 drain at {size:,} queued, tasks/s",
                "-",
                fmt(R(f"size_{size}_docket")),
                "",
                "",
            )
        )
    flat = [f for f in (R(f"size_{s}_docket") for s in args.sizes) if f and f.get("median")]
    if len(flat) >= 2 and len(flat) == len(args.sizes):
        rows.append(
            (
                "    largest/smallest queue rate",
                "",
                f"{flat[-1]['median'] / flat[0]['median']:.2f}x",
                "",
                "",
            )
        )
    row("  other processes' CPU, cores: during 2", "drain_foreign", ".2f", ratio=False)
    row("                                  during 3", "latency_foreign", ".2f", ratio=False)
    row("                                  during 4", "lateness_foreign", ".2f", ratio=False)
    row("                                  during 5", "cpu_foreign", ".2f", ratio=False)

    header = ("metric", LABEL["celery"], LABEL["docket"], "docket/Celery", "target")
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(5)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [
        f"Celery {machine['celery']} (kombu {machine['kombu']}) vs celery_docket "
        f"{machine['celery_docket']}: {args.reps} reps, median [min-max], systems alternating",
        f"redis-server {machine['redis_server']} at {machine['redis_url']}"
        f" ({'started by the bench' if machine['redis_started_by_bench'] else 'given'};"
        f" Celery db {args.celery_db}, celery_docket db {args.docket_db}),"
        f" Python {machine['python']}, redis-py {machine['redis_py']} + hiredis"
        f" {machine['hiredis']}, {machine['cpu_count']} CPUs {machine['cpu_model']},"
        f" repo at {(machine.get('git_head') or '?')[:10]}"
        f"{' (celery_docket/ modified)' if machine.get('celery_docket_dirty') else ''}",
        "",
        line(header),
        line(tuple("-" * w for w in widths)),
        *(line(r) for r in rows),
    ]
    if bench.notes:
        out += ["", *(f"note: {n}" for n in bench.notes)]
    return "\n".join(out)
