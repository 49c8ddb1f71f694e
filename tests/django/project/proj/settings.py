"""Settings of the test project; the database and the broker come from the environment."""

import os

SECRET_KEY = "test-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_celery_results",
    "django_celery_beat",
    "notes",
]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

if os.environ.get("TEST_DB_ENGINE") == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["TEST_DB_NAME"],
            "USER": os.environ["TEST_DB_USER"],
            "HOST": os.environ["TEST_DB_HOST"],
            "PORT": os.environ["TEST_DB_PORT"],
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("TEST_DB_NAME", "db.sqlite3"),
        }
    }

CELERY_BROKER_URL = os.environ.get("TEST_BROKER_URL", "memory://")
CELERY_RESULT_BACKEND = os.environ.get("TEST_RESULT_BACKEND") or None
CELERY_BEAT_SCHEDULER = os.environ.get("TEST_BEAT_SCHEDULER") or None
CELERY_DOCKET_KEY_PREFIX = os.environ.get("TEST_KEY_PREFIX") or "cd"
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TEST_QUEUE") or "celery"
CELERY_DB_REUSE_MAX = int(os.environ.get("TEST_DB_REUSE_MAX") or 0)
CELERY_RESULT_EXTENDED = bool(os.environ.get("TEST_RESULT_EXTENDED"))
CELERY_BEAT_MAX_LOOP_INTERVAL = float(os.environ.get("TEST_BEAT_INTERVAL") or 5)
CELERY_TASK_TRACK_STARTED = bool(os.environ.get("TEST_TRACK_STARTED"))
