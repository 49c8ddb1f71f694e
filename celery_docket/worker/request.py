"""``celery.worker.request``: ``Request`` and ``Context`` at the module path Celery uses."""

from __future__ import annotations

from ..app.requests import Context, Request

__all__ = ("Context", "Request")
