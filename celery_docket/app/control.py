"""``celery.app.control``: ``Control`` and ``Inspect`` at the module path Celery uses."""

from __future__ import annotations

from ..control import Control, Inspect

__all__ = ("Control", "Inspect")
