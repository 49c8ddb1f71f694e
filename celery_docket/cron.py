"""Crontab fields: Celery's cron syntax parsed into the sets of values a field selects.

``crontab`` (``schedules.py``) keeps the arithmetic of the next fire time; this module only
reads ``"*/15"``, ``"mon-fri"``, ``"1,15"`` and friends, with Celery's acceptance rules and
error types, so a field that Celery refuses is refused here the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeAlias

__all__ = ["Cronspec", "ParseException", "crontab_parser", "expand_field"]

Cronspec: TypeAlias = int | str | Iterable[int]
"""What a crontab field may be given as: an int, a cron string, or ints."""

# Three-letter prefixes accepted wherever a number is; months are looked up first.
_MONTH_NAMES = {
    n: i for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}
_DAY_NAMES = {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())}


class ParseException(Exception):
    """A crontab field could not be parsed.

    Like Celery's, this is a plain ``Exception`` (not a ``ValueError``): Celery raises it for
    structural problems (empty list items, a ``/`` with no step, a leading ``-``) and
    ``ValueError`` for out-of-range numbers or unknown names, so ``except`` clauses written
    for Celery behave the same here.
    """


_RANGE_PART = re.compile(r"(\w+)-(\w+)(?:/(\w*))?")
_STAR_STEP_PART = re.compile(r"\*/(\w*)")
_STAR_PART = re.compile(r"\*\n?")


class crontab_parser:  # noqa: N801 - Celery's name
    """Expand one crontab field into the set of values it selects.

    Grammar (items separated by ``,``)::

        item   := ( '*' | value | value '-' value ) [ '/' step ]
        value  := integer | name          (names: jan..dec, sun..sat; first 3 letters count)

    ``a-b`` with ``b < a`` wraps past the maximum (``fri-mon`` is fri, sat, sun, mon) and a
    step keeps every n-th value of the expanded run. ``max_`` is the number of values and
    ``min_`` the first one, so ``crontab_parser(31, 1)`` covers days of the month 1..31.
    Acceptance and error types (``ParseException`` vs ``ValueError``) match Celery's parser.
    """

    ParseException = ParseException

    def __init__(self, max_: int = 60, min_: int = 0) -> None:
        self.max_ = max_
        self.min_ = min_

    def parse(self, spec: str) -> set[int]:
        values: set[int] = set()
        for item in spec.split(","):
            if not item:
                raise ParseException(f"empty item in crontab field {spec!r}")
            values.update(self._parse_item(item))
        return values

    def _parse_item(self, item: str) -> list[int]:
        # Like Celery, only the start of an item must match a form; trailing text is ignored.
        m = _RANGE_PART.match(item)
        if m:
            step = m.group(3)
            if step == "":  # checked before the bounds, as Celery does
                raise ParseException(f"'/' without a step in {item!r}")
            run = self._span(self._number(m.group(1)), self._number(m.group(2)))
            return run if step is None else self._every(run, step)
        m = _STAR_STEP_PART.match(item)
        if m:
            if not m.group(1):
                raise ParseException(f"'/' without a step in {item!r}")
            return self._every(self._all(), m.group(1))
        if _STAR_PART.fullmatch(item):
            return self._all()
        value = self._number(item)
        return [value]

    def _all(self) -> list[int]:
        return list(range(self.min_, self.min_ + self.max_))

    def _span(self, first: int, last: int) -> list[int]:
        if last >= first:
            return list(range(first, last + 1))
        return list(range(first, self.min_ + self.max_)) + list(range(self.min_, last + 1))

    @staticmethod
    def _every(run: list[int], step: str) -> list[int]:
        n = int(step)
        if n == 0:
            raise ValueError("a crontab step of 0 selects nothing")
        return run[::n]

    def _number(self, token: str) -> int:
        if token.startswith("-"):
            raise ParseException(f"crontab values cannot be negative: {token!r}")
        try:
            value = int(token)
        except ValueError:
            prefix = token[:3].lower()
            if prefix in _MONTH_NAMES:
                value = _MONTH_NAMES[prefix]
            elif prefix in _DAY_NAMES:
                value = _DAY_NAMES[prefix]
            else:
                raise ValueError(f"{token!r} is not a number, day name or month name") from None
        highest = self.min_ + self.max_ - 1
        if value > highest:
            raise ValueError(f"{value} is above the largest allowed value {highest}")
        if value < self.min_:
            raise ValueError(f"{value} is below the smallest allowed value {self.min_}")
        return value


def expand_field(spec: Cronspec, max_: int, min_: int = 0) -> set[int]:
    """Accept an int, a cron string, or any iterable of ints, and range-check the result."""
    if isinstance(spec, int):
        values = {spec}
    elif isinstance(spec, str):
        values = crontab_parser(max_, min_).parse(spec)
    elif isinstance(spec, Iterable):
        values = set(spec)
    else:
        raise TypeError(
            f"crontab fields must be an int, a str or an iterable of ints, not {type(spec)!r}"
        )
    for value in values:
        if value < min_ or value >= min_ + max_:
            raise ValueError(f"crontab value {value!r} is outside {min_}-{min_ + max_ - 1}")
    return values
