"""Django support at Celery's module path (``celery.contrib.django``).

``task.DjangoTask`` (the default task class under Django, as in Celery 5.4+), ``results``
(``result_backend = "django-db"``: django-celery-results' ``TaskResult`` rows) and ``beat``
(django-celery-beat's ``DatabaseScheduler`` rows as our perpetual schedule). The set-up
itself (``django.setup()``, connection hygiene) is ``celery_docket.fixups.django``.
"""
