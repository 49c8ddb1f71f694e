"""The ``celery-docket`` command line: app loading, flags, one-line errors, call/result.

App-loading forms are checked against Celery's own ``find_app`` on the same project with
the import swapped. Errors run in real subprocesses, where a traceback would show. ``call``
and ``result`` talk to a worker in another process, so they need a real redis-server.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from celery_docket import _state
from celery_docket.cli import main as cli
from celery_docket.cli import worker as cli_worker
from celery_docket.cli.main import celery as celery_group

REPO = Path(__file__).resolve().parent.parent
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in ``tmp_path`` and undo whatever the CLI does to env, sys.path, modules, apps."""
    saved_env = dict(os.environ)
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    saved_default = _state._default_app
    saved_current = getattr(_state._tls, "current_app", None)
    for var in (
        "CELERY_APP",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "CELERY_LOADER",
        "CELERY_CONFIG_MODULE",
        "NO_COLOR",
    ):
        os.environ.pop(var, None)
    monkeypatch.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.startswith("cdt_"):
                del sys.modules[name]
        _state.set_default_app(saved_default)  # type: ignore[arg-type]
        _state._tls.current_app = saved_current


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def unique(stem: str) -> str:
    """A module name no other test (or Celery's run of the same test) has imported."""
    return f"cdt_{stem}_{uuid.uuid4().hex[:8]}"


class FakeController:
    """Stands in for WorkController: records what the CLI built, returns ``code``."""

    made: list[FakeController] = []
    code: int = 0
    fail_with: BaseException | None = None

    def __init__(self, app: Any, **options: Any) -> None:
        self.app = app
        self.options = options
        FakeController.made.append(self)

    def banner(self) -> str:
        return "FAKE-BANNER"

    def start(self) -> int:
        if FakeController.fail_with is not None:
            raise FakeController.fail_with
        return FakeController.code


@pytest.fixture
def fake_worker(monkeypatch: pytest.MonkeyPatch) -> type[FakeController]:
    FakeController.made = []
    FakeController.code = 0
    FakeController.fail_with = None
    monkeypatch.setattr(cli_worker, "make_worker", lambda app, **opts: FakeController(app, **opts))
    return FakeController


def invoke(args: list[str], **kwargs: Any) -> Any:
    return CliRunner().invoke(celery_group, args, prog_name="celery-docket", **kwargs)


def command() -> list[str]:
    """How to run the installed console script (or the module when it is not installed)."""
    script = Path(sys.executable).parent / "celery-docket"
    if script.exists():
        return [str(script)]
    found = shutil.which("celery-docket")
    if found:
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; from celery_docket.cli.main import main; sys.exit(main())",
    ]


def run_cli(
    args: list[str], cwd: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    environ.update(env)
    return subprocess.run(
        [*command(), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# -- app loading: every form Celery accepts, compared with Celery's find_app ------------------

FORMS: dict[str, tuple[dict[str, str], str, str]] = {
    # name: (files with {pkg} placeholders, -A value, main of the app that must be found)
    "package exposing app": ({"{pkg}/__init__.py": "app = Celery('found')\n"}, "{pkg}", "found"),
    "package with celery submodule": (
        {
            "{pkg}/__init__.py": "from .celery import app as celery_app\n",
            "{pkg}/celery.py": "app = Celery('found')\n",
        },
        "{pkg}",
        "found",
    ),
    "dotted celery module": (
        {"{pkg}/__init__.py": "", "{pkg}/celery.py": "app = Celery('found')\n"},
        "{pkg}.celery",
        "found",
    ),
    "module colon attribute": (
        {
            "{pkg}/__init__.py": "",
            "{pkg}/celery.py": "app = Celery('wrong')\nother = Celery('found')\n",
        },
        "{pkg}.celery:other",
        "found",
    ),
    "package colon app": ({"{pkg}/__init__.py": "app = Celery('found')\n"}, "{pkg}:app", "found"),
    "module named celery attribute": ({"{pkg}.py": "celery = Celery('found')\n"}, "{pkg}", "found"),
    "module scanned for an app": (
        {"{pkg}.py": "x = 1\nmy_application = Celery('found')\n"},
        "{pkg}",
        "found",
    ),
    "dotted attribute": (
        {"{pkg}/__init__.py": "", "{pkg}/apps.py": "main_app = Celery('found')\n"},
        "{pkg}.apps.main_app",
        "found",
    ),
    # app factories: the attribute is a proxy to the app (Flask extensions, FastAPI projects)
    "attribute is current_app": (
        {"{pkg}.py": "real = Celery('found')\nfrom FLAVOUR import current_app as celery\n"},
        "{pkg}.celery",
        "found",
    ),
    "colon attribute is current_app": (
        {"{pkg}.py": "real = Celery('found')\nfrom FLAVOUR import current_app\n"},
        "{pkg}:current_app",
        "found",
    ),
    "package whose celery attribute is current_app": (
        {
            "{pkg}/__init__.py": "real = Celery('found')\nfrom FLAVOUR import current_app\n"
            "celery = current_app\n"
        },
        "{pkg}",
        "found",
    ),
}


def _materialize(root: Path, files: dict[str, str], pkg: str, flavour: str) -> None:
    header = f"from {flavour} import Celery\n"
    write(
        root,
        {
            rel.format(pkg=pkg): header + text.replace("FLAVOUR", flavour)
            for rel, text in files.items()
        },
    )


def test_web_app_named_app_is_passed_over(isolated: Path) -> None:
    """``-A main`` where main has ``app = FastAPI()`` and ``celery = Celery()``: Celery's own
    loader stops at the web app; ours keeps looking for the Celery one."""
    pkg = unique("web")
    write(
        isolated,
        {
            f"{pkg}.py": "from celery_docket import Celery\nclass FastAPI: pass\n"
            "app = FastAPI()\ncelery = Celery('found')\n"
        },
    )
    sys.path.insert(0, str(isolated))
    assert cli.load_app(pkg).main == "found"
    assert cli.load_app(f"{pkg}.celery").main == "found"


@pytest.mark.parametrize("form", list(FORMS))
def test_app_forms_match_celery(form: str, isolated: Path) -> None:
    files, spec, expected = FORMS[form]
    ours, theirs = unique("ours"), unique("celery")
    _materialize(isolated / "ours", files, ours, "celery_docket")
    _materialize(isolated / "theirs", files, theirs, "celery")
    sys.path[:0] = [str(isolated / "ours"), str(isolated / "theirs")]

    app = cli.load_app(spec.format(pkg=ours))
    assert app.main == expected

    celery_utils = pytest.importorskip("celery.app.utils")
    their_app = celery_utils.find_app(spec.format(pkg=theirs))
    assert their_app.main == expected


def test_nested_attribute_after_colon(isolated: Path) -> None:
    """An extension over Celery, whose symbol lookup takes one attribute after the colon."""
    pkg = unique("nested")
    write(
        isolated,
        {f"{pkg}.py": "from celery_docket import Celery\nclass H:\n    app = Celery('n')\n"},
    )
    sys.path.insert(0, str(isolated))
    assert cli.load_app(f"{pkg}:H.app").main == "n"


def test_worker_loads_app_from_cwd(isolated: Path, fake_worker: type[FakeController]) -> None:
    pkg = unique("cwd")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('cwd-app')\n"})
    result = invoke(["-A", pkg, "worker"])
    assert result.exit_code == 0, result.output
    assert fake_worker.made[0].app.main == "cwd-app"
    assert "FAKE-BANNER" in result.output
    assert os.getcwd() in sys.path


def test_app_from_environment_and_workdir(
    isolated: Path, fake_worker: type[FakeController]
) -> None:
    pkg = unique("env")
    write(
        isolated / "proj",
        {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('env-app')\n"},
    )
    result = invoke(["--workdir", "proj", "worker"], env={"CELERY_APP": pkg})
    assert result.exit_code == 0, result.output
    assert fake_worker.made[0].app.main == "env-app"


def test_global_options_reach_the_app(isolated: Path, fake_worker: type[FakeController]) -> None:
    pkg, conf = unique("glob"), unique("conf")
    write(
        isolated,
        {
            f"{pkg}.py": "import os\nfrom celery_docket import Celery\n"
            "SEEN = os.environ.get('CELERY_BROKER_URL')\napp = Celery('g')\n",
            f"{conf}.py": "task_default_queue = 'from-config'\n",
        },
    )
    result = invoke(
        [
            "-A",
            pkg,
            "-b",
            "memory://cli-broker",
            "--result-backend",
            "memory://cli-results",
            "--config",
            conf,
            "--loader",
            "default",
            "-q",
            "--no-color",
            "worker",
        ]
    )
    assert result.exit_code == 0, result.output
    app = fake_worker.made[0].app
    assert sys.modules[pkg].SEEN == "memory://cli-broker"  # set before the app is imported
    assert app.conf.broker_url == "memory://cli-broker"
    assert app.conf.result_backend == "memory://cli-results"
    assert app.conf.task_default_queue == "from-config"
    assert "FAKE-BANNER" not in result.output  # -q hides the banner


def test_worker_flags_map_to_the_controller(
    isolated: Path, fake_worker: type[FakeController]
) -> None:
    pkg = unique("flags")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('f')\n"})
    args = [
        "-A", pkg, "worker", "-l", "info", "-c", "3", "-P", "threads", "-Q", "a, b,c",
        "-n", "w1@%h", "-B", "-E", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-O", "fair", "--prefetch-multiplier", "7",
        "--max-tasks-per-child", "10", "--time-limit", "30", "--soft-time-limit", "20",
        "--statedb", "x.db", "--uid", "1000", "--gid", "1000", "-f", "w-%n.log",
        "-s", "sched", "--scheduler", "celery.beat:PersistentScheduler",
    ]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 0, result.output
    (made,) = fake_worker.made
    host = socket.gethostname()
    assert made.options == {
        "pool": "threads",
        "concurrency": 3,
        "queues": ["a", "b", "c"],
        "hostname": f"w1@{host}",
        "loglevel": "INFO",
        "max_tasks_per_child": 10,
        "time_limit": 30.0,
        "soft_time_limit": 20.0,
        "beat": True,
        "logfile": f"w-{host.partition('.')[0]}.log",
    }
    assert made.app.conf.worker_prefetch_multiplier == 7
    assert made.app.conf.worker_send_task_events is True


def test_worker_defaults_and_warnings(isolated: Path, fake_worker: type[FakeController]) -> None:
    pkg = unique("defaults")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('d')\n"})
    result = invoke(["-A", pkg, "worker", "--autoscale", "10,3", "--max-memory-per-child", "1000"])
    assert result.exit_code == 0, result.output
    options = fake_worker.made[0].options
    assert options["pool"] == "prefork"
    assert options["loglevel"] == "WARNING"
    assert options["concurrency"] is None and options["queues"] is None
    assert options["hostname"] is None and options["beat"] is False
    assert "--autoscale is not supported" in result.output
    assert "--max-memory-per-child is not enforced" in result.output


def test_exclude_queues(isolated: Path, fake_worker: type[FakeController]) -> None:
    pkg = unique("excl")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('x')\n"})
    result = invoke(["-A", pkg, "worker", "-Q", "a,b,c", "-X", "b"])
    assert result.exit_code == 0, result.output
    assert fake_worker.made[0].options["queues"] == ["a", "c"]


def test_worker_exit_code_and_pidfile(
    isolated: Path, fake_worker: type[FakeController], monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = unique("pid")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('p')\n"})
    seen: list[str] = []

    def start(self: FakeController) -> int:
        seen.append((isolated / "w.pid").read_text().strip())
        return 3

    monkeypatch.setattr(fake_worker, "start", start)
    result = invoke(["-A", pkg, "worker", "--pidfile", "w.pid"])
    assert result.exit_code == 3
    assert seen == [str(os.getpid())]
    assert not (isolated / "w.pid").exists()


def test_pidfile_of_a_live_process_is_refused(
    isolated: Path, fake_worker: type[FakeController]
) -> None:
    pkg = unique("pid2")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('p')\n"})
    (isolated / "w.pid").write_text(f"{os.getppid()}\n")
    result = invoke(["-A", pkg, "worker", "--pidfile", "w.pid"])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert fake_worker.made == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-P", "gevent"], "gevent pool is not supported"),
        (["-P", "eventlet"], "use -P threads"),
        (["-D"], "--detach is not supported"),
    ],
)
def test_unsupported_worker_modes(
    isolated: Path, fake_worker: type[FakeController], args: list[str], message: str
) -> None:
    pkg = unique("unsup")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('u')\n"})
    result = invoke(["-A", pkg, "worker", *args])
    assert result.exit_code == 1
    assert message in result.output
    assert fake_worker.made == []


def test_broker_error_from_the_worker_is_one_line(
    isolated: Path, fake_worker: type[FakeController]
) -> None:
    import redis

    pkg = unique("brk")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('b')\n"})
    fake_worker.fail_with = redis.ConnectionError("Error 111 connecting to x. Connection refused.")
    result = invoke(["-A", pkg, "worker"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "FAKE-BANNER",
        "Error: Cannot connect to memory://: Error 111 connecting to x. Connection refused.",
    ]


def test_beat_runs_a_scheduler_only_process(
    isolated: Path, fake_worker: type[FakeController]
) -> None:
    """``celery beat`` under a supervisor must keep running, not exit and be restarted."""
    pkg = unique("beat")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('b')\n"})
    for extra in ([], ["--scheduler-only"], ["-S", "celery.beat:PersistentScheduler"]):
        fake_worker.made = []
        result = invoke(["-A", pkg, "beat", "-s", "x", "-l", "INFO", "--max-interval", "5", *extra])
        assert result.exit_code == 0, result.output
        assert "scheduler-only process" in result.output
        options = fake_worker.made[0].options
        assert options["pool"] == "solo" and options["queues"] == [] and options["beat"] is True


def test_beat_refuses_a_scheduler_it_cannot_run(
    isolated: Path, fake_worker: type[FakeController]
) -> None:
    pkg = unique("beatdb")
    write(isolated, {f"{pkg}.py": "from celery_docket import Celery\napp = Celery('b')\n"})
    for command in ("beat", "worker"):
        result = invoke(
            [
                "-A",
                pkg,
                command,
                "-S" if command == "beat" else "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ]
        )
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: --scheduler django_celery_beat")
        assert fake_worker.made == []


def test_help_and_version_need_no_app(isolated: Path) -> None:
    assert invoke(["worker", "--help"]).exit_code == 0
    result = invoke(["--version"])
    assert result.exit_code == 0 and result.output.startswith("celery-docket ")
    assert "worker" in invoke([]).output


def test_hostname_expansion() -> None:
    assert cli.host_format("w@%h", "box.example.com") == "w@box.example.com"
    assert cli.host_format("w@%n.x", "box.example.com") == "w@box.x"
    assert cli.host_format("%d/%%h", "box.example.com") == "example.com/%h"
    assert cli.default_nodename("w1") == "celery@w1"
    assert cli.default_nodename("w1@") == f"w1@{socket.gethostname()}"
    assert cli.default_nodename(None) == f"celery@{socket.gethostname()}"


def test_safe_url_hides_passwords() -> None:
    assert cli.safe_url("redis://:secret@h:6379/0") == "redis://:**@h:6379/0"
    assert cli.safe_url("redis://u:secret@h/0") == "redis://u:**@h/0"
    assert cli.safe_url("memory://") == "memory://"


# -- one-line errors, in real processes --------------------------------------------------------


def test_unknown_app_matches_celery_wording(tmp_path: Path) -> None:
    proc = run_cli(["-A", "cdt_no_such_module", "worker"], cwd=tmp_path)
    line = assert_one_line_error(proc)
    assert line == (
        "Error: Unable to load celery application. The module cdt_no_such_module was not found."
    )
    celery_bin = Path(sys.executable).parent / "celery"
    if celery_bin.exists():  # the same words as Celery, which spreads them over lines
        theirs = subprocess.run(
            [str(celery_bin), "-A", "cdt_no_such_module", "worker"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert " ".join(theirs.stderr.split()).endswith(" ".join(line.split()[1:]))


def test_app_module_with_an_error_is_one_line(tmp_path: Path) -> None:
    write(
        tmp_path, {"cdt_broken.py": "from celery_docket import Celery\nraise NameError('boom')\n"}
    )
    line = assert_one_line_error(run_cli(["-A", "cdt_broken", "worker"], cwd=tmp_path))
    assert "While trying to load the module cdt_broken" in line
    assert "NameError: boom (cdt_broken.py, line 2)" in line


def test_import_error_inside_the_app_is_not_reported_as_missing(tmp_path: Path) -> None:
    write(tmp_path, {"cdt_inner/__init__.py": "import cdt_inner.nope\n"})
    line = assert_one_line_error(run_cli(["-A", "cdt_inner", "worker"], cwd=tmp_path))
    assert "was not found" not in line and "No module named 'cdt_inner.nope'" in line


def test_missing_attribute_and_wrong_object(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "cdt_noapp.py": "x = 1\n",
            "cdt_realcelery.py": "from celery import Celery\napp = Celery('real')\n",
        },
    )
    line = assert_one_line_error(run_cli(["-A", "cdt_noapp", "worker"], cwd=tmp_path))
    assert (
        line
        == "Error: Unable to load celery application. Module 'cdt_noapp' has no attribute 'celery'"
    )
    line = assert_one_line_error(run_cli(["-A", "cdt_noapp:x", "worker"], cwd=tmp_path))
    assert "is not a Celery application" in line
    line = assert_one_line_error(run_cli(["-A", "cdt_realcelery", "worker"], cwd=tmp_path))
    assert "from celery_docket import Celery" in line


def test_refused_broker_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, {"cdt_refused.py": "from celery_docket import Celery\napp = Celery('r')\n"})
    for args in (
        ["-A", "cdt_refused", "-b", "redis://127.0.0.1:1/0", "worker"],
        ["-A", "cdt_refused", "-b", "redis://127.0.0.1:1/0", "call", "x.y"],
        ["-A", "cdt_refused", "-b", "redis://127.0.0.1:1/0", "beat", "--scheduler-only"],
    ):
        line = assert_one_line_error(run_cli(args, cwd=tmp_path))
        assert line.startswith("Error: Cannot connect to redis://127.0.0.1:1/0")


def test_bad_flag_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli(["-A", "whatever", "worker", "--no-such-flag"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert re.search(r"Error: No such option:? '?--no-such-flag", proc.stderr), proc.stderr
    proc = run_cli(["worker", "-P", "rocket"], cwd=tmp_path)
    assert proc.returncode == 2 and "Invalid value for '-P'" in proc.stderr


# -- call and result against a worker in another process (real Redis) --------------------------

RT_APP = """
import os
import time

from celery_docket import Celery

app = Celery("rt")
app.conf.docket_key_prefix = os.environ["RT_PREFIX"]


@app.task
def add(x, y):
    return x + y


@app.task
def boom(message):
    raise ValueError(message)
"""


@pytest.fixture
def rt_worker(tmp_path: Path, redis_server_url: str, prefix: str) -> Iterator[dict[str, Any]]:
    write(tmp_path, {"cdt_rt.py": RT_APP})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env["RT_PREFIX"] = prefix
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*command(), "-A", "cdt_rt", "-b", redis_server_url, "worker", "-P", "threads",
         "-c", "2", "-l", "INFO", "-n", "rt@%h"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield {"cwd": tmp_path, "url": redis_server_url, "env": {"RT_PREFIX": prefix}, "proc": proc}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        log.close()


@pytest.mark.redis
def test_call_and_result_roundtrip(rt_worker: dict[str, Any]) -> None:
    cwd, url, env = rt_worker["cwd"], rt_worker["url"], rt_worker["env"]
    base = ["-A", "cdt_rt", "-b", url]

    called = run_cli([*base, "call", "cdt_rt.add", "--args", "[2, 3]"], cwd=cwd, **env)
    assert called.returncode == 0, called.stderr
    task_id = called.stdout.strip()
    assert UUID_RE.match(task_id), called.stdout

    got = run_cli([*base, "result", task_id, "--timeout", "30"], cwd=cwd, **env)
    assert got.returncode == 0, got.stderr
    assert got.stdout == "5\n"

    called = run_cli(
        [*base, "call", "cdt_rt.add", "-k", '{"x": 1, "y": 2}', "--countdown", "0.5",
         "--expires", "120", "--queue", "celery"],
        cwd=cwd, **env,
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    got = run_cli([*base, "result", called.stdout.strip(), "--timeout", "30"], cwd=cwd, **env)
    assert got.stdout == "3\n"

    called = run_cli([*base, "call", "cdt_rt.boom", "--args", '["kaput"]'], cwd=cwd, **env)
    failed_id = called.stdout.strip()
    got = run_cli([*base, "result", failed_id, "--timeout", "30"], cwd=cwd, **env)
    assert_one_line_error(got)
    assert got.stderr.strip() == f"Error: Task {failed_id} raised ValueError: kaput"
    tb = run_cli([*base, "result", failed_id, "--traceback"], cwd=cwd, **env)
    assert tb.returncode == 0
    assert "ValueError: kaput" in tb.stdout

    proc = rt_worker["proc"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    log = (cwd / "worker.log").read_text()
    assert "Traceback" not in log.split("[tasks]")[0]
    assert "cdt_rt.add" in log  # the banner lists the app's tasks


@pytest.mark.redis
def test_result_timeout_is_one_line(tmp_path: Path, redis_server_url: str, prefix: str) -> None:
    write(tmp_path, {"cdt_rt.py": RT_APP})
    proc = run_cli(
        ["-A", "cdt_rt", "-b", redis_server_url, "result", str(uuid.uuid4()), "--timeout", "0.5"],
        cwd=tmp_path, RT_PREFIX=prefix,
    )  # fmt: skip
    line = assert_one_line_error(proc)
    assert "within 0.5 seconds" in line


# -- the example project ----------------------------------------------------------------------


def test_example_project_runs(tmp_path: Path) -> None:
    """``celery-docket -A examples.proj worker -P threads -l INFO`` shows every demo."""
    log_path = tmp_path / "example.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*command(), "-A", "examples.proj", "worker", "-P", "threads", "-l", "INFO"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wanted = ["demo add -> 4", "'done after 2 retries'", "demo chain -> 16", "tasks.tick["]
        deadline = time.monotonic() + 45
        try:
            while time.monotonic() < deadline:
                text = log_path.read_text()
                if all(w in text for w in wanted) or proc.poll() is not None:
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
    text = log_path.read_text()
    for w in wanted:
        assert w in text, text
    assert "Traceback" not in text
    assert code == 0, text
