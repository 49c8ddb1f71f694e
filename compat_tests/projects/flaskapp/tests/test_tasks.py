import time
from unittest import mock

from flaskproj import tasks


def test_add_through_the_view_and_a_worker(client, worker):
    response = client.post("/tasks/add", data={"a": 2, "b": 3})
    task_id = response.get_json()["result_id"]
    deadline = time.monotonic() + 10
    while True:
        state = client.get(f"/tasks/result/{task_id}").get_json()
        if state["ready"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state == {"ready": True, "successful": True, "value": 5}


def test_task_runs_in_the_app_context_on_the_worker(app, worker):
    assert tasks.greeting.delay().get(timeout=10) == "hello from the app context"


def test_retries_then_succeeds(app, worker):
    assert tasks.flaky.delay(2).get(timeout=10) == 2


def test_retries_exhausted_raise(app, worker):
    result = tasks.flaky.delay(5)
    try:
        result.get(timeout=10)
    except RuntimeError as exc:
        assert "not yet" in str(exc)
    else:
        raise AssertionError("expected the task's own exception")
    assert result.state == "FAILURE"


def test_eager_mode_runs_in_the_app_context(app, celery_app):
    celery_app.conf.task_always_eager = True
    try:
        assert tasks.greeting.delay().get() == "hello from the app context"
        assert tasks.add.apply(args=(1, 1)).get() == 2
    finally:
        celery_app.conf.task_always_eager = False


def test_view_with_the_task_mocked(client):
    with mock.patch("flaskproj.tasks.add.delay") as delay:
        delay.return_value.id = "fixed-id"
        response = client.post("/tasks/add", data={"a": 1, "b": 1})
    assert response.get_json() == {"result_id": "fixed-id"}
    delay.assert_called_once_with(1, 1)
    assert not isinstance(tasks.add.delay, mock.MagicMock), "the patch was undone"
