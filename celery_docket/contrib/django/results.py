"""``result_backend = "django-db"``: django-celery-results' ``TaskResult`` rows, kept up to date.

Projects read their task results from the ``TaskResult`` table (the admin, their own views,
reports), so the rows must be written as django-celery-results writes them. ``get()`` keeps
waiting on the broker, where every result is also stored (a notification instead of polling
the table): the rows are written beside it, before the task's message is acked.

Rows have the fields django-celery-results fills: status, result (serialized with
``result_serializer``), meta with the children, ``date_started`` for STARTED, and, with
``result_extended`` as there, task name, args and kwargs (their reprs), worker and
traceback. ``django-cache`` and a missing ``django_celery_results`` app are refused at
start-up.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ... import _state, states
from ...exceptions import ImproperlyConfigured
from ...protocol import decode_result_meta, exception_to_meta, saferepr

__all__ = ["DjangoResultStore", "check_backend", "is_django_backend"]

DJANGO_BACKENDS = ("django-db", "django-cache")


def is_django_backend(backend: Any) -> bool:
    return str(backend or "").split(":", 1)[0] in DJANGO_BACKENDS


def check_backend(app: Any) -> None:
    """Refuse at start-up, on one line, what the rows cannot honour."""
    backend = str(app.conf.result_backend or "")
    if not is_django_backend(backend):
        return
    if backend.startswith("django-cache"):
        raise ImproperlyConfigured(
            "result_backend 'django-cache' is not supported by celery_docket: use 'django-db' "
            "(django-celery-results' TaskResult rows) or leave it unset (results on the broker)"
        )
    from django.apps import apps

    if not apps.ready:  # e.g. `celery-docket -A proj result ID`: set Django up first
        app.signal_import_modules()
    if not apps.is_installed("django_celery_results"):
        raise ImproperlyConfigured(
            "result_backend 'django-db' needs 'django_celery_results' in INSTALLED_APPS "
            "(and its migrations applied)"
        )


def _encode(data: Any, serializer: str) -> tuple[str, str, str]:
    """What django-celery-results stores: a content type, an encoding and text."""
    from kombu.serialization import dumps

    content_type, encoding, payload = dumps(data, serializer)
    if encoding == "binary":
        payload = base64.b64encode(payload).decode("ascii")
    elif isinstance(payload, bytes):
        payload = payload.decode(encoding)
    return content_type, encoding, payload


class DjangoResultStore:
    """The broker's result store, plus a ``TaskResult`` row for every write."""

    def __init__(self, app: Any, inner: Any) -> None:
        self.app = app
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def set(self, execution_id: str, value: bytes, ttl_ms: int | None) -> None:
        self.write_row(execution_id, value)
        self.inner.set(execution_id, value, ttl_ms)

    def forget(self, execution_id: str) -> None:
        from django_celery_results.models import TaskResult

        TaskResult.objects.filter(task_id=execution_id).delete()
        self.inner.forget(execution_id)

    def write_row(self, task_id: str, value: bytes) -> None:
        from django.db import connections, router
        from django_celery_results.models import TaskResult

        conf = self.app.conf
        serializer = str(conf.result_serializer or "json")
        meta = decode_result_meta(value, accept=None, serializer=serializer)
        status = str(meta["status"])
        result = meta.get("result")
        if status in states.EXCEPTION_STATES and isinstance(result, BaseException):
            result = exception_to_meta(result, serializer)
        content_type, encoding, encoded = _encode(result, serializer)
        _, _, encoded_meta = _encode({"children": meta.get("children") or []}, serializer)
        row: dict[str, Any] = {
            "content_type": content_type,
            "content_encoding": encoding,
            "task_id": task_id,
            "result": encoded,
            "status": status,
            "meta": encoded_meta,
            "traceback": None,
        }
        if conf.get("result_extended"):
            args, kwargs = meta.get("args"), meta.get("kwargs")
            row.update(
                task_name=meta.get("name"),
                task_args=json.dumps(saferepr(tuple(args or ()))) if args is not None else None,
                task_kwargs=json.dumps(saferepr(dict(kwargs or {})))
                if kwargs is not None
                else None,
                worker=meta.get("worker"),
                traceback=meta.get("traceback"),
            )
        if status == states.STARTED:
            from django.db.models.functions import Now

            row["date_started"] = Now()
        TaskResult._default_manager.store_result(**row)
        # written after the task ended (its own postrun closed the connections): do not
        # keep an idle connection open until the next task
        alias = router.db_for_write(TaskResult)
        connection = connections[alias]
        if _state.get_current_task() is None and not connection.in_atomic_block:
            connection.close()
