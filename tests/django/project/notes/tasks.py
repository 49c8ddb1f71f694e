"""Tasks that import a model at module level, as almost every Django project's do."""

import os
import threading

from django.db import connection, transaction

from celery_docket import shared_task

from .models import Note


@shared_task
def add_note(text):
    return Note.objects.create(text=text).pk


@shared_task
def count_notes():
    return Note.objects.count()


@shared_task
def probe_connection(n):
    """Was a connection left open by an earlier task? Then open one (a query)."""
    found_open = connection.connection is not None
    Note.objects.filter(text=f"probe-{n}").exists()
    return {"n": n, "found_open": found_open, "pid": os.getpid(), "thread": threading.get_ident()}


@shared_task
def note_then_delay_on_commit(text, fail):
    with transaction.atomic():
        pk = Note.objects.create(text=text).pk
        add_note.delay_on_commit(f"{text}-after-commit")
        if fail:
            raise RuntimeError("rolled back")
    return pk


@shared_task
def fails(message):
    raise ValueError(message)


@shared_task
def tick(label):
    return Note.objects.create(text=f"tick-{label}").pk
