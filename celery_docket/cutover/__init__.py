"""Cutover from a live Celery deployment sharing our Redis: intake, migrate, rollback.

During a rolling deploy, producers still on Celery keep writing to kombu's lists; the intake
(``worker --celery-intake`` or ``docket_celery_intake = True``) moves those messages into our
streams as they arrive, and ``celery-docket migrate`` drains what is left in one go.
``migrate --to-celery`` writes our waiting work back as Celery protocol-2 messages.
"""

from .layout import CeleryLayout
from .move import Census, Mover, Tally

__all__ = ["CeleryLayout", "Census", "Mover", "Tally"]
