from flask import Blueprint, request

from . import tasks

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


@bp.post("/add")
def start_add() -> dict:
    result = tasks.add.delay(int(request.form["a"]), int(request.form["b"]))
    return {"result_id": result.id}


@bp.get("/result/<task_id>")
def task_result(task_id: str) -> dict:
    return tasks.state_of(task_id)
