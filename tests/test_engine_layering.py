"""The layers stay apart, both ways.

The engine imports only the stdlib, redis, fakeredis and cloudpickle: never the facade. And
nothing outside ``celery_docket/engine/`` touches an engine structure itself: no engine key
names or key builders, no Lua, no raw stream commands, no one-letter record fields; the
facade goes through the engine's APIs (``Docket``, ``engine/snapshot.py``, ``engine/admin.py``)
so the engine's layout can change without breaking it.
"""

from __future__ import annotations

import ast
import pathlib

ENGINE = pathlib.Path(__file__).resolve().parents[1] / "celery_docket" / "engine"
FORBIDDEN = ("celery", "kombu", "click", "celery_docket")
ALLOWED_ABSOLUTE = ("celery_docket.engine",)


def imported_modules(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.append(node.module)
            elif node.level > 1:
                if node.module:
                    names.append("celery_docket." + node.module)
                else:
                    names += ["celery_docket." + alias.name for alias in node.names]
    return names


def test_engine_does_not_import_facade_cli_contrib_click_kombu_or_celery() -> None:
    files = sorted(ENGINE.rglob("*.py"))
    assert files, "engine sources not found"
    offenders = []
    for path in files:
        for name in imported_modules(path):
            if name.startswith(ALLOWED_ABSOLUTE):
                continue
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(ENGINE)}: {name}")
    assert offenders == []


def test_the_checker_catches_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import kombu\nfrom celery_docket.cli import main\nfrom .. import app\n")
    assert imported_modules(bad) == ["kombu", "celery_docket.cli", "celery_docket.app"]


# -- nothing outside the engine touches its structures ------------------------------------

PACKAGE = ENGINE.parent
ENGINE_INTERNALS = {"keys", "scripts", "lua", "lease", "commit"}
"""Engine modules that hold key names, record fields or Lua: the facade imports none."""
ENGINE_KEY_NAMES = {"GROUP", "QueueKeys", "heartbeat_key", "workers_key", "queues_key"}
RAW_COMMANDS = {
    "eval",
    "evalsha",
    "register_script",
    "script_load",
    "xack",
    "xadd",
    "xautoclaim",
    "xclaim",
    "xdel",
    "xgroup_create",
    "xgroup_createconsumer",
    "xgroup_delconsumer",
    "xgroup_destroy",
    "xgroup_setid",
    "xinfo_consumers",
    "xinfo_groups",
    "xinfo_stream",
    "xlen",
    "xpending",
    "xpending_range",
    "xrange",
    "xread",
    "xreadgroup",
    "xrevrange",
    "xtrim",
}
"""Redis commands only the engine's structures need (the facade keeps no stream or script)."""
HASH_COMMANDS = {"hget", "hmget", "hset", "hsetnx", "hdel", "hexists", "hincrby", "hgetall"}
KEY_FRAGMENTS = (":hb:", ":workers", ":queues", ":stream", ":due", ":run:", ":dead", ":fates")
KEY_FRAGMENTS += (":wake",)
"""Pieces of the engine's key names (engine/keys.py)."""
ENGINE_PAYLOAD_FIELDS = {"deliveries"}
"""Heartbeat fields whose items use one-letter names (decoded by engine/snapshot.py)."""


def _module_of(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of string constants standing alone as statements (docstrings, attribute docs)."""
    return {
        id(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }


def _receiver_is_docket(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "docket") or (
        isinstance(node, ast.Attribute) and node.attr == "docket"
    )


def engine_leaks(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> list[str]:
    """Where ``path`` (a module of the package at ``root``) touches an engine structure."""
    tree = ast.parse(path.read_text())
    module = _module_of(path, root)
    engine = f"{root.name}.engine"
    docs = _docstrings(tree)
    out: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom):
            name = _resolve(node, module, path.name == "__init__.py")
            if name.startswith(engine + ".") and name.split(".")[2] in ENGINE_INTERNALS:
                out.append(f"{where} imports {name}")
            elif name == engine or name.startswith(engine + "."):
                for alias in node.names:
                    if alias.name in ENGINE_KEY_NAMES or (
                        name == engine and alias.name in ENGINE_INTERNALS
                    ):
                        out.append(f"{where} imports {alias.name} from {name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if alias.name.startswith(engine + ".") and parts[2] in ENGINE_INTERNALS:
                    out.append(f"{where} imports {alias.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in RAW_COMMANDS:
                out.append(f"{where} calls {attr}")
            elif attr == "keys" and _receiver_is_docket(node.func.value):
                out.append(f"{where} builds engine keys (docket.keys)")
            elif attr in HASH_COMMANDS and any(
                isinstance(a, ast.Constant)
                and isinstance(a.value, str | bytes)
                and len(a.value) == 1
                for a in node.args
            ):
                out.append(f"{where} reads or writes a one-letter record field ({attr})")
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
        ):
            if any(fragment in node.value for fragment in KEY_FRAGMENTS):
                out.append(f"{where} spells an engine key name: {node.value!r}")
            elif node.value in ENGINE_PAYLOAD_FIELDS:
                out.append(f"{where} reads an engine payload field: {node.value!r}")
    return out


def test_nothing_outside_the_engine_touches_its_keys_fields_or_scripts() -> None:
    files = sorted(p for p in PACKAGE.rglob("*.py") if ENGINE not in p.parents)
    assert len(files) > 50, "facade sources not found"
    offenders = [leak for path in files for leak in engine_leaks(path)]
    assert offenders == []


def test_the_leak_checker_catches_each_kind_of_leak(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "celery_docket"
    (root / "engine").mkdir(parents=True)
    (root / "control").mkdir()
    bad = root / "control" / "bad.py"
    bad.write_text(
        '''"""A docstring may name {cd:q}:stream."""
from ..engine.keys import QueueKeys
from ..engine import GROUP, snapshot, scripts
from celery_docket.engine.worker import workers_key
import celery_docket.engine.lua


def f(app, r):
    app.docket.keys("q")
    r.xadd("s", {})
    r.hmget("k", "s", "b")
    r.hgetall("celery-docket-chord-x")
    snapshot.heartbeats(app.docket)
    [d.get("s") for d in app.beat["deliveries"]]
    return f"{app.prefix}:hb:" + "x"
'''
    )
    leaks = sorted(leak.split(" ", 1)[1] for leak in engine_leaks(bad, root))
    assert leaks == sorted(
        [
            "imports celery_docket.engine.keys",
            "imports GROUP from celery_docket.engine",
            "imports scripts from celery_docket.engine",
            "imports workers_key from celery_docket.engine.worker",
            "imports celery_docket.engine.lua",
            "builds engine keys (docket.keys)",
            "calls xadd",
            "reads or writes a one-letter record field (hmget)",
            "reads an engine payload field: 'deliveries'",
            "spells an engine key name: ':hb:'",
        ]
    )
