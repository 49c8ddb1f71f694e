"""A small demo project: ``celery-docket -A examples.proj worker -P threads -l INFO``.

Importing the package loads the app, as in Celery's recommended layout, so ``-A examples.proj``
finds it (through ``examples.proj.celery``).
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
