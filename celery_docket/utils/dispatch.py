"""``celery.utils.dispatch``: the ``Signal`` class, for projects that define their own."""

from __future__ import annotations

from ..signals import Signal

__all__ = ("Signal",)
