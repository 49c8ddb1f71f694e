"""Result backends at Celery's module path (``celery.backends``)."""
