"""Settings: Celery's names, defaults and loading rules, checked against real Celery."""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from celery_docket import config
from celery_docket.config import DEFAULTS, DOCKET_DEFAULTS, NEW_TO_OLD, OLD_TO_NEW, Settings


def celery_app(**kwargs: Any) -> Any:
    """A real Celery app as the oracle; skips only the test that asks for one."""
    celery = pytest.importorskip("celery")
    return celery.Celery("oracle", set_as_current=False, **kwargs)


CELERY_NAMESPACES = ("accept", "beat", "broker", "control", "event", "redis", "result", "task")
CELERY_NAMESPACES += ("worker", "security", "enable", "imports", "include", "timezone")


def celery_conf(source: Any, namespace: str | None = None, **changes: Any) -> Any:
    app = celery_app(**changes)
    app.config_from_object(source, namespace=namespace)
    return app.conf


def celery_defaults() -> Any:
    conf = celery_app().conf
    conf.task_serializer  # the first read finalizes Celery's pending config
    return conf


def ours(source: Any, namespace: str | None = None) -> Settings:
    conf = Settings()
    conf.config_from_object(source, namespace=namespace)
    return conf


# -- defaults and names ------------------------------------------------------------------


def test_defaults_match_celery() -> None:
    """Every Celery setting we define has Celery's default value and type."""
    reference = celery_defaults()
    checked = 0
    for name, value in DEFAULTS.items():
        if name in DOCKET_DEFAULTS or name not in reference:
            continue
        assert reference[name] == value, name
        assert type(reference[name]) is type(value), name
        checked += 1
    assert checked > 150


def test_core_celery_settings_are_all_defined() -> None:
    """No core (non backend-specific) Celery setting is missing from our table."""
    reference = celery_defaults()
    missing = {
        key
        for key in set(reference.keys())
        if key.islower() and key.startswith(CELERY_NAMESPACES) and key not in DEFAULTS
    }
    assert not missing


def test_brief_listed_settings_exist() -> None:
    names = """broker_url result_backend task_serializer result_serializer accept_content
    result_accept_content timezone enable_utc task_always_eager task_eager_propagates
    task_store_eager_result task_ignore_result task_track_started task_acks_late
    task_acks_on_failure_or_timeout task_reject_on_worker_lost task_time_limit
    task_soft_time_limit task_default_queue task_default_rate_limit task_routes task_queues
    task_create_missing_queues task_default_retry_delay task_annotations task_protocol
    task_compression task_send_sent_event result_expires result_extended result_persistent
    worker_concurrency worker_prefetch_multiplier worker_max_tasks_per_child
    worker_max_memory_per_child worker_hijack_root_logger worker_redirect_stdouts
    worker_log_format worker_task_log_format worker_disable_rate_limits worker_send_task_events
    imports include beat_schedule beat_scheduler beat_max_loop_interval broker_transport_options
    broker_connection_retry_on_startup broker_pool_limit result_backend_transport_options
    redis_max_connections""".split()
    conf = Settings()
    for name in names:
        assert name in DEFAULTS
        assert getattr(conf, name) == DEFAULTS[name]


def test_docket_defaults() -> None:
    conf = Settings()
    assert conf.docket_max_payload_bytes == 10 * 1024 * 1024
    assert conf.docket_lease_seconds == 30
    assert conf.docket_max_deliveries == 5
    assert conf.docket_key_prefix == "cd"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("CELERY_TASK_SERIALIZER", "task_serializer"),
        ("BROKER_URL", "broker_url"),
        ("CELERY_RESULT_BACKEND", "result_backend"),
        ("CELERYD_CONCURRENCY", "worker_concurrency"),
        ("CELERYBEAT_SCHEDULE", "beat_schedule"),
        ("CELERY_ALWAYS_EAGER", "task_always_eager"),
        ("CELERY_TASK_RESULT_EXPIRES", "result_expires"),
        ("CELERY_EAGER_PROPAGATES_EXCEPTIONS", "task_eager_propagates"),
        ("CELERYD_TASK_TIME_LIMIT", "task_time_limit"),
        ("CELERY_SEND_EVENTS", "worker_send_task_events"),
    ],
)
def test_old_name_examples(old: str, new: str) -> None:
    assert OLD_TO_NEW[old] == new
    assert ours({old: "sentinel"})[new] == "sentinel"


def test_every_old_name_reads_like_celery() -> None:
    """A config of only old names resolves each to the same new setting in both."""
    source = {old: f"value-of-{old}" for old in OLD_TO_NEW}
    reference, mine = celery_conf(dict(source)), ours(dict(source))
    for old, new in OLD_TO_NEW.items():
        if new in reference:
            assert reference[new] == source[old], (old, new)
        assert mine[new] == source[old], (old, new)
        assert mine[old] == source[old]
    assert len(NEW_TO_OLD) == len(OLD_TO_NEW)


# -- namespaces, old/new mixing, precedence: same answers as Celery ----------------------

KEYS = (
    "broker_url",
    "result_backend",
    "task_serializer",
    "task_always_eager",
    "worker_concurrency",
    "timezone",
    "result_expires",
)

CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"broker_url": "redis://new", "task_serializer": "pickle"}, None),
    ({"BROKER_URL": "redis://old", "CELERY_ALWAYS_EAGER": True, "CELERYD_CONCURRENCY": 3}, None),
    ({"CELERY_ALWAYS_EAGER": True, "broker_url": "redis://n", "task_serializer": "json"}, None),
    ({"CELERY_ALWAYS_EAGER": True, "BROKER_URL": "x", "task_serializer": "json"}, None),
    ({"result_expires": 5, "CELERY_TASK_RESULT_EXPIRES": 6}, None),
    ({"CELERY_BROKER_URL": "redis://p", "broker_url": "redis://np"}, "CELERY"),
    ({"CELERY_TASK_ALWAYS_EAGER": True, "CELERY_RESULT_BACKEND": "rb"}, "CELERY"),
    (
        {"CELERY_ALWAYS_EAGER": True, "BROKER_URL": "redis://o", "TIME_ZONE": "Europe/Paris"},
        "CELERY",
    ),
    ({"task_serializer": "pickle", "CELERY_WORKER_CONCURRENCY": 2}, "CELERY"),
    ({"celery_broker_url": "redis://lower"}, "CELERY"),
    ({"celery_broker_url": "redis://lower", "CELERY_BROKER_URL": "up"}, "celery"),
    ({"CELERY_TASK_ALWAYS_EAGER": True}, None),
    ({"TIME_ZONE": "Asia/Tokyo", "timezone": "UTC"}, None),
]


def _outcome(conf: Any) -> dict[str, Any] | str:
    try:
        attrs = {f"conf.{key}": getattr(conf, key) for key in KEYS}
        return attrs | {f"conf[{key!r}]": conf.get(key) for key in KEYS}
    except Exception as exc:  # noqa: BLE001 - the oracle's error, whatever it is, is compared
        return type(exc).__name__


@pytest.mark.parametrize(("source", "namespace"), CASES)
def test_lookup_matches_celery(
    source: dict[str, Any], namespace: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_RESULT_BACKEND", raising=False)
    expected = _outcome(celery_conf(dict(source), namespace))
    assert _outcome(ours(dict(source), namespace)) == expected


def test_mixing_error_names_the_setting() -> None:
    conf = ours({"CELERY_ALWAYS_EAGER": True, "broker_url": "x", "task_serializer": "json"})
    with pytest.raises(config.ImproperlyConfigured, match="CELERY_ALWAYS_EAGER"):
        conf.broker_url
    from celery_docket.exceptions import ImproperlyConfigured

    assert config.ImproperlyConfigured is ImproperlyConfigured


def test_changes_beat_source_and_survive_reconfiguration() -> None:
    conf = Settings({"broker_url": "redis://ctor"})
    conf.config_from_object({"broker_url": "redis://cfg", "task_serializer": "pickle"})
    assert (
        conf.broker_url
        == celery_conf({"broker_url": "redis://cfg"}, broker="redis://ctor").broker_url
    )
    assert conf.task_serializer == "pickle"
    conf.task_acks_late = True
    conf.config_from_object({"broker_url": "redis://cfg2"})
    assert conf.task_serializer == "json"  # the new source replaced the old one
    assert conf.task_acks_late is True  # ...but explicit changes are kept
    assert conf.broker_url == "redis://ctor"


def test_source_is_read_live() -> None:
    """Like Celery, later edits to the source (e.g. Django override_settings) are seen."""
    source = {"CELERY_TASK_ALWAYS_EAGER": False}
    conf = ours(source, "CELERY")
    assert conf.task_always_eager is False
    source["CELERY_TASK_ALWAYS_EAGER"] = True
    assert conf.task_always_eager is True


# -- environment ----------------------------------------------------------------------------


@pytest.mark.parametrize("env_value", ["redis://env", ""])
def test_env_precedence_matches_celery(env_value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", env_value)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", env_value and env_value + "-rb")
    monkeypatch.setenv("CELERY_BROKER_READ_URL", "")
    source = {"broker_url": "redis://cfg", "result_backend": "redis://cfgrb"}
    ref, mine = celery_conf(dict(source)), ours(dict(source))
    for key in ("broker_url", "result_backend", "broker_read_url", "broker_write_url"):
        assert getattr(mine, key) == getattr(ref, key), key
        assert mine.get(key) == ref.get(key), key  # item access ignores the environment
    if env_value:
        assert mine.broker_url == "redis://env"
        assert mine["broker_url"] == "redis://cfg"


def test_env_beats_constructor_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://env")
    assert Settings({"broker_url": "redis://ctor"}).broker_url == "redis://env"


# -- lazy loading ---------------------------------------------------------------------------


@pytest.fixture
def config_module(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = "cd_test_celeryconfig"
    (tmp_path / f"{name}.py").write_text(
        "broker_url = 'redis://from-module'\n"
        "task_serializer = 'pickle'\n"
        "class Nested:\n    broker_url = 'redis://from-attr'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_string_source_is_imported_on_first_read(config_module: str) -> None:
    conf = Settings()
    assert conf.config_from_object(config_module) is None
    conf.task_acks_late = True  # writes do not load the source
    assert "broker_url" not in conf  # nor do `in` checks before the first read, as Celery
    assert config_module not in sys.modules
    assert conf.broker_url == "redis://from-module"
    assert config_module in sys.modules
    assert conf.task_serializer == "pickle"


@pytest.mark.parametrize(
    ("suffix", "expected"), [(":Nested", "redis://from-attr"), (".Nested", "redis://from-attr")]
)
def test_string_source_with_attribute(config_module: str, suffix: str, expected: str) -> None:
    assert ours(config_module + suffix).broker_url == expected


def test_force_loads_now(config_module: str) -> None:
    conf = Settings()
    assert conf.config_from_object(config_module, force=True) is conf
    assert config_module in sys.modules


def test_django_style_settings_configured_after_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """``config_from_object('django.conf:settings')`` may come before settings exist."""

    class LazySettings:
        configured = False

        def __getattr__(self, name: str) -> Any:
            if not LazySettings.configured:
                raise RuntimeError("settings are not configured yet")
            values = {"CELERY_BROKER_URL": "redis://django", "TIME_ZONE": "Europe/Oslo"}
            if name in values:
                return values[name]
            raise AttributeError(name)

        def __dir__(self) -> list[str]:
            return ["CELERY_BROKER_URL", "TIME_ZONE"]

    pkg, mod = types.ModuleType("fakedjango"), types.ModuleType("fakedjango.conf")
    mod.settings = LazySettings()  # type: ignore[attr-defined]
    pkg.conf = mod  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fakedjango", pkg)
    monkeypatch.setitem(sys.modules, "fakedjango.conf", mod)
    conf = Settings()
    conf.config_from_object("fakedjango.conf:settings", namespace="CELERY")
    LazySettings.configured = True
    assert conf.broker_url == "redis://django"
    assert conf.timezone == "Europe/Oslo"
    assert conf.task_default_queue == "celery"


def test_import_errors_surface_at_first_read_unless_silent() -> None:
    conf = Settings()
    conf.config_from_object("cd_no_such_module_xyz")
    with pytest.raises(ModuleNotFoundError):
        conf.broker_url
    conf = Settings()
    conf.config_from_object("os:cd_no_such_attribute")
    with pytest.raises(ModuleNotFoundError):  # not AttributeError, which getattr would hide
        conf.broker_url
    conf = Settings()
    conf.config_from_object("cd_no_such_module_xyz", silent=True)
    assert conf.broker_url is None


def test_import_error_inside_config_module_is_not_masked(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cd_broken_config.py").write_text("import cd_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    conf = Settings()
    conf.config_from_object("cd_broken_config")
    with pytest.raises(ModuleNotFoundError, match="cd_missing_dependency_xyz"):
        conf.broker_url
    sys.modules.pop("cd_broken_config", None)


def test_config_from_envvar(config_module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CD_TEST_CONFIG", raising=False)
    with pytest.raises(config.ImproperlyConfigured, match="CD_TEST_CONFIG"):
        Settings().config_from_envvar("CD_TEST_CONFIG")
    assert Settings().config_from_envvar("CD_TEST_CONFIG", silent=True) is False
    monkeypatch.setenv("CD_TEST_CONFIG", config_module)
    conf = Settings()
    conf.config_from_envvar("CD_TEST_CONFIG")
    assert conf.broker_url == "redis://from-module"


def test_module_and_class_sources() -> None:
    module = types.ModuleType("m")
    module.CELERY_ALWAYS_EAGER = True  # type: ignore[attr-defined]

    class Config:
        task_default_queue = "q"

    assert ours(module).task_always_eager is True
    assert ours(Config).task_default_queue == "q"


# -- mapping / attribute API -------------------------------------------------------------


def test_mapping_and_attribute_access() -> None:
    conf = Settings()
    conf.broker_url = "redis://a"
    assert conf["broker_url"] == "redis://a"
    conf.update(task_serializer="pickle", CELERY_ALWAYS_EAGER=True)
    assert conf.task_serializer == "pickle"
    assert conf.task_always_eager is True
    assert conf.get("nope", 1) == 1
    assert conf.setdefault("task_default_queue", "x") == "celery"
    assert conf.setdefault("my_own_key", 7) == 7 and conf.my_own_key == 7
    assert "task_always_eager" in conf and "nope" not in conf
    del conf["task_always_eager"]
    assert conf.task_always_eager is False
    with pytest.raises(AttributeError):
        conf.nope
    with pytest.raises(KeyError):
        conf["nope"]
    assert set(DEFAULTS) <= set(conf)
    assert len(conf) == len(set(conf))
    assert conf.without_defaults() == {
        "broker_url": "redis://a",
        "task_serializer": "pickle",
        "my_own_key": 7,
    }
    assert conf.value_set_for("broker_url") and not conf.value_set_for("task_acks_late")
    other = conf.copy()
    other.broker_url = "redis://b"
    assert conf.broker_url == "redis://a"


def test_setdefault_before_first_read_is_lazy_like_celery() -> None:
    source = {"broker_url": "redis://cfg"}
    reference = celery_app()
    reference.config_from_object(dict(source))
    reference.conf.setdefault("broker_url", "redis://sd")
    conf = Settings()
    conf.config_from_object(dict(source))
    conf.setdefault("broker_url", "redis://sd")
    assert conf.broker_url == reference.conf.broker_url


def test_defaults_are_per_instance() -> None:
    a, b = Settings(), Settings()
    a.beat_schedule["x"] = {"task": "t", "schedule": 1}
    assert b.beat_schedule == {}


def test_lease_from_visibility_timeout() -> None:
    conf = ours({"broker_transport_options": {"visibility_timeout": 120}})
    assert conf.docket_lease_seconds == 120
    assert conf["docket_lease_seconds"] == 120
    conf.docket_lease_seconds = 7  # an explicit value wins
    assert conf.docket_lease_seconds == 7
    assert ours({"CELERY_DOCKET_LEASE_SECONDS": 9}, "CELERY").docket_lease_seconds == 9


def test_timezone_falls_back_to_django_time_zone() -> None:
    assert ours({"TIME_ZONE": "Europe/Paris"}).timezone == "Europe/Paris"
    assert ours({"timezone": "UTC", "TIME_ZONE": "Europe/Paris"}).timezone == "UTC"


# -- warn_unsupported -------------------------------------------------------------------------


def test_warn_unsupported_once_per_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_WARNED", set())
    conf = Settings(
        {
            "worker_pool": "gevent",
            "task_serializer": "pickle",
            "accept_content": ["json"],  # equals the default ('json',)
            "docket_lease_seconds": 99,
        }
    )
    with pytest.warns(UserWarning, match="'worker_pool'") as record:
        names = config.warn_unsupported(conf, {"task_serializer"})
    assert names == ["worker_pool"]
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert config.warn_unsupported(conf, {"task_serializer"}) == []
        assert config.warn_unsupported(Settings(), set()) == []
