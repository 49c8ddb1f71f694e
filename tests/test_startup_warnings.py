"""What the worker and the command line say at start-up about settings that mislead."""

from __future__ import annotations

import logging
import uuid

import pytest

from celery_docket import Celery
from celery_docket.worker import WorkController, warn_long_lease


def _app(**conf: object) -> Celery:
    return Celery(f"w{uuid.uuid4().hex[:6]}", broker=f"memory://{uuid.uuid4().hex}", **conf)


def test_long_visibility_timeout_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    app = _app(broker_transport_options={"visibility_timeout": 43200})
    with caplog.at_level(logging.WARNING, logger="celery.worker"):
        worker = WorkController(app, pool="solo", setup_logging=False).start_in_thread()
        worker.stop()
    lines = [r.getMessage() for r in caplog.records if "visibility_timeout" in r.getMessage()]
    assert len(lines) == 1
    assert "broker_transport_options['visibility_timeout']=43200" in lines[0]
    assert "12 hours" in lines[0] and "docket_lease_seconds" in lines[0]


@pytest.mark.parametrize(
    "conf",
    [
        {},
        {"broker_transport_options": {"visibility_timeout": 120}},
        {"broker_transport_options": {"visibility_timeout": 43200}, "docket_lease_seconds": 30},
    ],
)
def test_no_warning_for_short_or_overridden_leases(conf: dict) -> None:
    assert warn_long_lease(_app(**conf).conf) is None


def test_call_and_result_refuse_an_in_process_broker(tmp_path, monkeypatch) -> None:
    """``call`` on memory:// used to print an id and ``result`` then waited forever."""
    from click.testing import CliRunner

    from celery_docket.cli.main import celery as celery_group

    (tmp_path / "cdt_memcall.py").write_text(
        "from celery_docket import Celery\napp = Celery('m', broker='memory://m')\n"
        "@app.task\ndef add(x, y):\n    return x + y\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    runner = CliRunner()
    for args in (["call", "cdt_memcall.add", "--args", "[1, 2]"], ["result", "some-id"]):
        result = runner.invoke(celery_group, ["-A", "cdt_memcall", *args])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: the broker is memory://m")
        assert "cannot reach it" in lines[0]
