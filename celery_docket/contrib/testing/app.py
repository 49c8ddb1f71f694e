"""``celery.contrib.testing.app``: the test-app helpers, at the module path Celery uses."""

from __future__ import annotations

from . import DEFAULT_TEST_CONFIG, TestApp, Trap, set_trap, setup_default_app

__all__ = ("DEFAULT_TEST_CONFIG", "TestApp", "Trap", "set_trap", "setup_default_app")
