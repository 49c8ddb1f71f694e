"""celery_docket.utils.log against celery.utils.log / celery.app.log."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from celery_docket.utils import log as ours

celery_log: Any = pytest.importorskip("celery.utils.log")
CeleryTaskFormatter: Any = pytest.importorskip("celery.app.log").TaskFormatter

FMT = "%(levelname)s %(task_name)s[%(task_id)s]: %(message)s"


def unique(prefix: str) -> str:
    """A logger name no other test (or implementation) has touched."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def record(level: int = logging.INFO, msg: str = "hello %s", exc_info: Any = None) -> Any:
    return logging.LogRecord("x", level, __file__, 1, msg, ("world",), exc_info)


@pytest.fixture
def task_getter() -> Iterator[Callable[[Any], None]]:
    def install(task: Any) -> None:
        ours.set_current_task_getter(lambda: task)

    yield install
    ours.set_current_task_getter(None)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# -- logger hierarchy ----------------------------------------------------------------------


def test_base_loggers_are_celerys() -> None:
    assert ours.base_logger is logging.getLogger("celery") is celery_log.base_logger
    assert ours.task_logger is logging.getLogger("celery.task") is celery_log.task_logger
    assert ours.worker_logger is logging.getLogger("celery.worker") is celery_log.worker_logger
    assert ours.task_logger.parent is ours.base_logger
    assert ours.worker_logger.parent is ours.base_logger


def test_task_logger_propagates_to_celery_task() -> None:
    name = unique("proj.tasks.")
    logger = ours.get_task_logger(name)
    assert logger.name == name
    assert logger.parent is logging.getLogger("celery.task")
    capture = Capture()
    ours.task_logger.addHandler(capture)
    try:
        logger.warning("from task")
    finally:
        ours.task_logger.removeHandler(capture)
    assert [r.getMessage() for r in capture.records] == ["from task"]
    assert capture.records[0].name == name


def test_task_logger_under_existing_package_is_reparented() -> None:
    pkg = unique("pkg")
    logging.getLogger(pkg)  # the package logger exists, as in most apps
    logger = ours.get_task_logger(f"{pkg}.tasks")
    assert logger.parent is ours.task_logger


@pytest.mark.parametrize("name", ["celery", "celery.task"])
def test_reserved_task_logger_names(name: str) -> None:
    with pytest.raises(RuntimeError) as mine:
        ours.get_task_logger(name)
    with pytest.raises(RuntimeError) as theirs:
        celery_log.get_task_logger(name)
    assert str(mine.value) == str(theirs.value)


def _shape(get_logger: Callable[[str], logging.Logger], prefix: str) -> list[str]:
    """Parent names of a few loggers, with the unique prefix replaced, for comparison."""
    logging.getLogger(f"{prefix}pkg")  # an existing package logger
    names = [f"{prefix}top", f"{prefix}pkg.mod", f"{prefix}orphan.mod", "celery.sub" + prefix]
    out = []
    for name in names:
        logger = get_logger(name)
        parent = logger.parent.name if logger.parent else None
        out.append(str(parent).replace(prefix, "<p>"))
        assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    return out


def test_get_logger_parenting_matches_celery() -> None:
    mine = _shape(ours.get_logger, unique("o"))
    theirs = _shape(celery_log.get_logger, unique("c"))
    assert mine == theirs
    assert mine == ["root", "celery", "root", "celery"]


def test_get_task_logger_matches_celery() -> None:
    mine = ours.get_task_logger(unique("o") + ".x")
    theirs = celery_log.get_task_logger(unique("c") + ".x")
    assert mine.parent is theirs.parent is ours.task_logger


def test_mlevel_matches_celery() -> None:
    for level in ["info", "WARN", "debug", "Error", "fatal", "critical", None, 0, 10, 35]:
        assert ours.mlevel(level) == celery_log.mlevel(level), level
    with pytest.raises(KeyError) as mine:
        ours.mlevel("nope")
    with pytest.raises(KeyError) as theirs:
        celery_log.mlevel("nope")
    assert mine.value.args == theirs.value.args


# -- formatters -----------------------------------------------------------------------------


@pytest.mark.parametrize("use_color", [True, False])
@pytest.mark.parametrize(
    "level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
)
def test_color_formatter_matches_celery(level: int, use_color: bool) -> None:
    fmt = "%(levelname)s %(name)s %(message)s"
    mine = ours.ColorFormatter(fmt, use_color=use_color).format(record(level))
    theirs = celery_log.ColorFormatter(fmt, use_color=use_color).format(record(level))
    assert mine == theirs
    assert ("\x1b[" in mine) == (use_color and level != logging.INFO)


def test_color_formatter_with_exception_matches_celery() -> None:
    try:
        raise ZeroDivisionError("nope")
    except ZeroDivisionError:
        ei = sys.exc_info()
    mine = ours.ColorFormatter("%(message)s").format(record(logging.ERROR, exc_info=ei))
    theirs = celery_log.ColorFormatter("%(message)s").format(record(logging.ERROR, exc_info=ei))
    assert mine == theirs
    assert "ZeroDivisionError: nope" in mine


def test_color_formatter_datefmt() -> None:
    f = ours.ColorFormatter("%(asctime)s", use_color=False, datefmt="%Y")
    rec = record()
    assert f.format(rec) == celery_log.ColorFormatter("%(asctime)s", False, "%Y").format(rec)


def test_task_formatter_outside_task_matches_celery() -> None:
    mine = ours.TaskFormatter(FMT, use_color=False).format(record())
    theirs = CeleryTaskFormatter(FMT, use_color=False).format(record())
    assert mine == theirs == "INFO ???[???]: hello world"


def test_task_formatter_keeps_explicit_values_outside_task() -> None:
    rec = record()
    rec.task_id, rec.task_name = "given-id", "given.name"
    assert ours.TaskFormatter(FMT, use_color=False).format(rec) == (
        "INFO given.name[given-id]: hello world"
    )


def test_task_formatter_uses_registered_getter(task_getter: Callable[[Any], None]) -> None:
    task = SimpleNamespace(name="proj.add", request=SimpleNamespace(id="abc-123"))
    task_getter(task)
    rec = record()
    rec.task_id = "stale"  # the running task wins, as in Celery
    line = ours.TaskFormatter(FMT, use_color=False).format(rec)
    assert line == "INFO proj.add[abc-123]: hello world"
    assert ours.get_current_task() is task


def test_task_formatter_getter_returning_none(task_getter: Callable[[Any], None]) -> None:
    task_getter(None)
    assert ours.TaskFormatter(FMT, use_color=False).format(record()) == (
        "INFO ???[???]: hello world"
    )


def test_task_formatter_colours_like_color_formatter(task_getter: Callable[[Any], None]) -> None:
    task_getter(SimpleNamespace(name="t", request=SimpleNamespace(id="1")))
    line = ours.TaskFormatter("%(task_name)s %(message)s").format(record(logging.ERROR))
    assert line == "\x1b[1;31mt hello world\x1b[0m"


def test_default_getter_restored() -> None:
    ours.set_current_task_getter(lambda: object())
    ours.set_current_task_getter(None)
    assert ours.get_current_task() is None


def test_task_logger_end_to_end(task_getter: Callable[[Any], None]) -> None:
    logger = ours.get_task_logger(unique("proj.e2e."))
    logger.setLevel(logging.INFO)
    handler = logging.Handler()
    lines: list[str] = []
    handler.emit = lambda rec: lines.append(handler.format(rec))  # type: ignore[method-assign]
    handler.setFormatter(ours.TaskFormatter(FMT, use_color=False))
    ours.task_logger.addHandler(handler)
    try:
        logger.info("outside")
        task_getter(SimpleNamespace(name="proj.mul", request=SimpleNamespace(id="id-9")))
        logger.info("inside %d", 2)
    finally:
        ours.task_logger.removeHandler(handler)
    assert lines == ["INFO ???[???]: outside", "INFO proj.mul[id-9]: inside 2"]
