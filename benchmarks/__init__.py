"""Benchmarks of celery_docket (not part of the installed package); see README.md here."""
