"""A Flask app factory with Celery, as Flask's "Background Tasks with Celery" guide writes it."""

import os

from celery import Celery, Task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def create_app(**overrides: object) -> Flask:
    app = Flask(__name__)
    broker = os.environ.get("FLASKPROJ_BROKER", "redis://127.0.0.1:6379/0")
    app.config.from_mapping(
        GREETING="hello from the app context",
        CELERY=dict(broker_url=broker, result_backend=broker, task_ignore_result=True),
    )
    app.config.update(overrides)
    celery_init_app(app)
    from . import views

    app.register_blueprint(views.bp)
    return app
