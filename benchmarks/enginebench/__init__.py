"""The parts of ``benchmarks/engine_bench.py``: child roles, phases (the entry script reports)."""
