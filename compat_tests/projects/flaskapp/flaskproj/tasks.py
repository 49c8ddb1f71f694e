from celery import shared_task
from celery.result import AsyncResult
from flask import current_app


@shared_task(ignore_result=False)
def add(a: int, b: int) -> int:
    return a + b


@shared_task(ignore_result=False)
def greeting() -> str:
    return current_app.config["GREETING"]


@shared_task(bind=True, ignore_result=False, max_retries=2, default_retry_delay=0)
def flaky(self, fail_times: int) -> int:
    if self.request.retries < fail_times:
        raise self.retry(exc=RuntimeError("not yet"))
    return self.request.retries


def state_of(task_id: str) -> dict:
    result = AsyncResult(task_id)
    return {
        "ready": result.ready(),
        "successful": result.successful() if result.ready() else None,
        "value": result.result if result.ready() else None,
    }
