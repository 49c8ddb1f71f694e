"""The parts of ``benchmarks/compare.py`` (Celery 5.x vs celery_docket), one job a module."""
