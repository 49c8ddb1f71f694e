"""``celery.utils.text``: small string helpers projects use for log lines and reports."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterable
from pprint import pformat
from typing import Any

__all__ = (
    "abbr",
    "abbrtask",
    "dedent",
    "dedent_initial",
    "ensure_newlines",
    "ensure_sep",
    "fill_paragraphs",
    "indent",
    "join",
    "pluralize",
    "pretty",
    "simple_format",
    "str_to_list",
    "truncate",
)


def str_to_list(s: str | Iterable[str]) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; a list unchanged."""
    if isinstance(s, str):
        return s.split(",")
    return list(s)


def dedent_initial(s: str, n: int = 4) -> str:
    return s[n:] if s[:n] == " " * n else s


def dedent(s: str, sep: str = "\n") -> str:
    return sep.join(dedent_initial(line) for line in s.splitlines())


def fill_paragraphs(s: str, width: int, sep: str = "\n") -> str:
    return sep.join(textwrap.fill(part, width) for part in s.split(sep))


def join(parts: Iterable[str | None], sep: str = "\n") -> str:
    """Join the parts that are not empty."""
    return sep.join(part for part in parts if part)


def ensure_sep(sep: str, s: str, n: int = 2) -> str:
    """``s`` ending in ``n`` copies of ``sep``."""
    return s + sep * (n - s.count(sep))


ensure_newlines = ensure_sep


def abbr(S: str | None, max: int, ellipsis: str | bool = "...") -> str | None:  # noqa: A002, N803
    """``S`` cut to ``max`` characters, the cut marked with ``ellipsis``."""
    if S is None:
        return "???"
    if len(S) > max:
        if not ellipsis:
            return S[:max]
        mark = str(ellipsis)
        return S[: max - len(mark)] + mark
    return S


def abbrtask(S: str | None, max: int) -> str | None:  # noqa: A002, N803
    """A dotted task name shortened from the left: ``proj.tasks.add`` -> ``[.]tasks.add``."""
    if S is None:
        return "???"
    if len(S) <= max:
        return S
    module, _, cls = S.rpartition(".")
    module = abbr(module, max - len(cls) - 3, False) or ""
    return f"{module}[.]{cls}"


def indent(t: str, indent: int = 0, sep: str = "\n") -> str:
    return sep.join(" " * indent + line for line in t.split(sep))


def truncate(s: str, maxlen: int = 128, suffix: str = "...") -> str:
    """``s`` cut at a word boundary before ``maxlen``, plus ``suffix``."""
    if maxlen and len(s) >= maxlen:
        return s[:maxlen].rsplit(" ", 1)[0] + suffix
    return s


def pluralize(n: float, text: str, suffix: str = "s") -> str:
    return text + suffix if n != 1 else text


def pretty(value: Any, width: int = 80, nl_width: int = 80, sep: str = "\n", **kw: Any) -> str:
    """``pformat``, with a long dict starting on its own line."""
    if isinstance(value, dict):
        return f"{{{sep} {pformat(value, 4, nl_width)[1:]}"
    if isinstance(value, tuple):
        return f"{sep}{' ' * 4}{pformat(value, width=nl_width, **kw)}"
    return pformat(value, width=width, **kw)


_FORMAT_KEY = re.compile(r"%(\w)")


def simple_format(
    s: str, keys: dict[str, Any], pattern: re.Pattern[str] = _FORMAT_KEY, expand: str = r"\1"
) -> str:
    """Expand ``%x`` keys from ``keys``; an unknown key is an error, as in Celery."""
    if not s:
        return s
    lookup = dict(keys)
    lookup.setdefault("%", "%")

    def resolve(match: re.Match[str]) -> str:
        key = match.expand(expand)
        try:
            value = lookup[key]
        except KeyError:
            raise ValueError(f"Unknown format %{key} in string {s!r}.") from None
        return str(value() if isinstance(value, Callable) else value)  # type: ignore[arg-type]

    return pattern.sub(resolve, s)
