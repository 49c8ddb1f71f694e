"""Workload 8 of compare.py: the same no-op drain for every system, peers included.

Celery and celery_docket run compare.py's own drain (prefork -c 2, clock from the first task
body); each peer in ``benchmarks/peers/`` runs its library's worker CLI with 2 worker
processes (clock from the first message leaving the queue). A peer whose library is missing
is skipped with a note; ``pip install -e '.[bench-peers]'`` installs those on PyPI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.comparebench.bench import Bench
from benchmarks.comparebench.common import LABEL, SYSTEMS, Failed
from benchmarks.harness.log import progress
from benchmarks.harness.machine import version
from benchmarks.harness.redis_data import with_db
from benchmarks.harness.stats import fmt, summary
from benchmarks.peers import PEERS
from benchmarks.peers.drain import Skipped, drain

FIELDS = ("rate", "worker_cpu_us_per_task", "redis_cpu_us_per_task")


def run_peers(bench: Bench, base_url: str) -> None:
    """``--peer-tasks`` no-ops per drain, every system, ``--reps`` times in rotating order."""
    args = bench.args
    n, reps = args.peer_tasks, args.reps
    url = with_db(base_url, args.peers_db)
    systems: list[str] = [*SYSTEMS, *PEERS]
    skipped: dict[str, str] = {}
    versions = {"celery": version("celery"), "docket": version("celery-docket")}
    progress(f"workload 8: drain of {n:,} no-ops by 2 worker processes, every system, {reps} reps")
    for rep in range(reps):
        shift = rep % len(systems)
        for system in systems[shift:] + systems[:shift]:
            if system in skipped:
                continue
            where = f"peers rep {rep + 1}/{reps} {LABEL.get(system, system)}"
            try:
                if system in SYSTEMS:
                    out = bench.drain_once(system, n, bulk=False)
                    bench.clean(system)
                else:
                    out = drain(system, url, n, bench.logdir, timeout=args.drain_timeout)
                    versions[system] = out["version"]
            except Skipped as exc:
                skipped[system] = str(exc)
                progress(f"  {exc}")
                continue
            except (Failed, RuntimeError) as exc:
                bench.fail(where, exc)
                continue
            bench.put("peers", system, rep, {k: out[k] for k in (*FIELDS, "foreign_cores")})
            progress(
                f"  {where}: {out['rate']:,.0f}/s, worker CPU {out['worker_cpu_us_per_task']:.0f}"
                f" us/task, redis {out['redis_cpu_us_per_task']:.0f} us/task (other procs "
                f"{out['foreign_cores']:.2f} cores)"
            )
    rows: dict[str, Any] = {}
    for system in systems:
        if system in skipped:
            rows[system] = {"skipped": skipped[system]}
            continue
        raw = bench.raw.get("peers", {}).get(system, [])
        row: dict[str, Any] = {f: summary([v[f] if v else None for v in raw]) for f in FIELDS}
        row["cpu_us_per_task"] = summary(
            [v["worker_cpu_us_per_task"] + v["redis_cpu_us_per_task"] if v else None for v in raw]
        )
        row["version"] = versions.get(system)
        rows[system] = row
    bench.results["peers"] = {"tasks": n, "systems": rows}
    bench.notes.extend(skipped.values())


def render_peers(results: dict[str, Any], order: Sequence[str] = (*SYSTEMS, *PEERS)) -> str:
    """The peers table: one row per system, CPU per task split into worker and Redis."""
    doc = results.get("peers")
    if not doc:
        return ""
    header = ("system", "version", "drain tasks/s", "CPU us/task", "worker", "redis-server")
    rows = []
    for system in order:
        row = doc["systems"].get(system)
        if row is None:
            continue
        label = LABEL.get(system, system)
        if "skipped" in row:
            rows.append((label, "-", "skipped", "", "", ""))
            continue
        rows.append(
            (
                label,
                row.get("version") or "?",
                fmt(row["rate"]),
                fmt(row["cpu_us_per_task"]),
                fmt(row["worker_cpu_us_per_task"]),
                fmt(row["redis_cpu_us_per_task"]),
            )
        )
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    title = (
        f"8 drain of {doc['tasks']:,} no-ops, 2 worker processes each (Celery/celery_docket: "
        "prefork -c 2; peers: their worker CLI), median [min-max]; CPU = worker trees + redis-server"
    )
    return "\n".join([title, "", line(header), line(["-" * w for w in widths]), *map(line, rows)])
