"""Shared benchmark plumbing: one module per job, imported by every script in benchmarks/.

``redis_server`` (a throwaway loopback redis-server, also used by ``tests/redis_server.py``),
``procs`` (spawn and stop by pid or process group, /proc readings), ``cpu`` (CPU meters),
``stats`` (medians, percentiles, table cells), ``machine`` (what ran the benchmark) and
``log`` (progress lines). Nothing in ``celery_docket`` imports this package.
"""
