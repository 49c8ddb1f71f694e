import pytest
from celery.contrib.testing.worker import start_worker
from flaskproj import create_app


@pytest.fixture
def app():
    return create_app(TESTING=True)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def celery_app(app):
    return app.extensions["celery"]


@pytest.fixture
def worker(celery_app):
    with start_worker(celery_app, pool="solo", perform_ping_check=False) as w:
        yield w
