"""Celery's own integration suite, run against celery_docket (see ``run.py``)."""
