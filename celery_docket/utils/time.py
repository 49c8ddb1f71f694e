"""``celery.utils.time``: the date and time helpers projects import from Celery.

Written for this package; the names, arguments and results follow Celery's so code that
computes retry countdowns or formats durations with them keeps working unchanged.
"""

from __future__ import annotations

import random
import time as _time
from datetime import date, datetime, timedelta, tzinfo
from datetime import timezone as _dt_timezone
from typing import Any
from zoneinfo import ZoneInfo

__all__ = (
    "LocalTimezone",
    "add_seconds_to_datetime",
    "adjust_timestamp",
    "delta_resolution",
    "ffwd",
    "get_exponential_backoff_interval",
    "humanize_seconds",
    "is_naive",
    "localize",
    "make_aware",
    "maybe_iso8601",
    "maybe_make_aware",
    "maybe_timedelta",
    "rate",
    "remaining",
    "subtract_datetimes",
    "timezone",
    "to_utc",
    "utcoffset",
    "weekday",
)

DAYNAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
WEEKDAYS = {name: i for i, name in enumerate(DAYNAMES)}

# largest unit first (Celery stops at days); (seconds in the unit, singular, plural)
_UNITS = (
    (60 * 60 * 24, "day", "days"),
    (60 * 60, "hour", "hours"),
    (60, "minute", "minutes"),
    (1, "second", "seconds"),
)


class LocalTimezone(tzinfo):
    """The system's local time zone, from the C library (what ``timezone.local`` is)."""

    def _offset(self, dt: datetime | None) -> timedelta:
        stamp = _time.mktime((dt or datetime.now()).replace(tzinfo=None).timetuple())
        return timedelta(seconds=_time.localtime(stamp).tm_gmtoff)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self._offset(dt)

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(0)
        stamp = _time.mktime(dt.replace(tzinfo=None).timetuple())
        return timedelta(hours=1) if _time.localtime(stamp).tm_isdst > 0 else timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return _time.tzname[self.dst(dt) != timedelta(0)]

    def __repr__(self) -> str:
        return f"<LocalTimezone: UTC{self._offset(None).total_seconds() / 3600:+g}>"


class _Zone:
    """``celery.utils.time.timezone``: the UTC and local zones and conversions between them."""

    utc = _dt_timezone.utc

    @property
    def local(self) -> tzinfo:
        return LocalTimezone()

    def get_timezone(self, zone: str | tzinfo) -> tzinfo:
        if isinstance(zone, str):
            return _dt_timezone.utc if zone.upper() == "UTC" else ZoneInfo(zone)
        return zone

    def tz_or_local(self, tzinfo: tzinfo | None = None) -> tzinfo:
        return self.local if tzinfo is None else self.get_timezone(tzinfo)

    def to_local(
        self, dt: datetime, local: tzinfo | None = None, orig: tzinfo | None = None
    ) -> datetime:
        if is_naive(dt):
            dt = make_aware(dt, orig or self.utc)
        return localize(dt, self.tz_or_local(local))

    def to_system(self, dt: datetime) -> datetime:
        return dt.astimezone(tz=None)

    def to_local_fallback(self, dt: datetime) -> datetime:
        return make_aware(dt, self.local) if is_naive(dt) else localize(dt, self.local)


timezone = _Zone()


def maybe_timedelta(delta: int | float | timedelta) -> timedelta:
    """Seconds as a timedelta; a timedelta unchanged."""
    if isinstance(delta, (int, float)):
        return timedelta(seconds=delta)
    return delta


def delta_resolution(dt: datetime, delta: timedelta) -> datetime:
    """``dt`` rounded down to the coarsest unit ``delta`` still resolves (days ... seconds)."""
    seconds = delta.total_seconds()
    if seconds >= 86400:
        return datetime(dt.year, dt.month, dt.day, tzinfo=dt.tzinfo)
    if seconds >= 3600:
        return datetime(dt.year, dt.month, dt.day, dt.hour, tzinfo=dt.tzinfo)
    if seconds >= 60:
        return datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, tzinfo=dt.tzinfo)
    return dt


def remaining(
    start: datetime, ends_in: timedelta, now: Any = None, relative: bool = False
) -> timedelta:
    """Real time left until ``start + ends_in`` (negative once past).

    ``relative`` rounds the end down to the resolution of ``ends_in`` (a whole minute for
    a one-minute interval); Celery's DST corner cases for day intervals are not copied.
    """
    now = now() if callable(now) else now
    if now is None:
        now = datetime.now(_dt_timezone.utc)
        if start.tzinfo is None:
            now = now.replace(tzinfo=None)
    end = start + ends_in
    if relative:
        end = delta_resolution(end, ends_in).replace(microsecond=0)
    left: timedelta = end - now
    return left


def rate(r: Any) -> float:
    """A rate limit (``"10/m"``, ``"5/s"``, ``100``) as tasks per second; 0 means none."""
    if r in (None, "", 0):
        return 0
    if isinstance(r, str):
        ops, _, per = r.partition("/")
        divisor = {"s": 1, "m": 60, "h": 3600}[(per or "s")[0].lower()]
        return float(ops or 0) / divisor
    return float(r)


def weekday(name: str) -> int:
    """``"mon"``/``"monday"`` -> 1 (Sunday is 0)."""
    key = name.lower()[:3]
    try:
        return WEEKDAYS[key]
    except KeyError:
        raise KeyError(name) from None


def humanize_seconds(
    secs: float, prefix: str = "", sep: str = "", now: str = "now", microseconds: bool = False
) -> str:
    """``humanize_seconds(90)`` -> ``"1.50 minutes"``; 0 -> ``"now"``, as Celery prints."""
    secs = float(f"{secs:.2f}")
    for size, one, many in _UNITS:
        if secs >= size:
            value = secs / size
            return f"{prefix}{sep}{value:.2f} {one if value == 1 else many}"
    if microseconds and secs > 0.0:
        return f"{prefix}{sep}{secs:.2f} seconds"
    return now


def maybe_iso8601(dt: datetime | str | None) -> datetime | None:
    """An ISO 8601 string parsed; a datetime or None unchanged."""
    if dt is None or isinstance(dt, datetime):
        return dt
    return datetime.fromisoformat(dt.replace("Z", "+00:00"))


def is_naive(dt: datetime) -> bool:
    return dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None


def make_aware(dt: datetime, tz: tzinfo) -> datetime:
    """A naive datetime read as wall time in ``tz``."""
    return dt.replace(tzinfo=tz)


def localize(dt: datetime, tz: tzinfo) -> datetime:
    """An aware datetime shown in ``tz`` (a naive one is taken to be in ``tz`` already)."""
    return make_aware(dt, tz) if is_naive(dt) else dt.astimezone(tz)


def to_utc(dt: datetime) -> datetime:
    """A naive datetime taken as UTC, made aware."""
    return make_aware(dt, _dt_timezone.utc)


def maybe_make_aware(dt: datetime, tz: tzinfo | None = None, naive_as_utc: bool = True) -> datetime:
    if is_naive(dt):
        if naive_as_utc:
            dt = to_utc(dt)
        return localize(dt, _dt_timezone.utc if tz is None else timezone.get_timezone(tz))
    return dt


def add_seconds_to_datetime(dt: datetime, seconds: float) -> datetime:
    return dt + timedelta(seconds=seconds)


def subtract_datetimes(a: datetime, b: datetime) -> timedelta:
    return a - b


def utcoffset(time: Any = _time, localtime: Any = _time.localtime) -> float:
    """The local zone's offset from UTC in hours, west positive (Celery's sign); true
    division, so UTC+5:30 is -5.5, not -6."""
    seconds_west = time.altzone if localtime().tm_isdst else time.timezone
    return float(seconds_west / 3600)


def adjust_timestamp(ts: float, offset: int, here: Any = utcoffset) -> float:
    """A timestamp from a zone ``offset`` hours west of UTC, in this zone."""
    return float(ts - (offset - here()) * 3600)


def get_exponential_backoff_interval(
    factor: float, retries: int, maximum: float, full_jitter: bool = False
) -> int:
    """The countdown for retry number ``retries``: ``factor * 2**retries``, capped at
    ``maximum``; ``full_jitter`` picks uniformly below it (Celery's retry_backoff rule)."""
    countdown = min(maximum, factor * (2**retries))
    if full_jitter:
        countdown = random.randrange(int(countdown) + 1)
    return max(0, int(countdown))


class ffwd:  # noqa: N801 - Celery's name
    """A relative date change (``ffwd(hour=3, weekday=0)``), as cron-like schedules use."""

    def __init__(
        self,
        year: int | None = None,
        month: int | None = None,
        weeks: int = 0,
        weekday: int | None = None,
        day: int | None = None,
        hour: int | None = None,
        minute: int | None = None,
        second: int | None = None,
        microsecond: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.fields = {
            k: v
            for k, v in dict(
                year=year,
                month=month,
                day=day,
                hour=hour,
                minute=minute,
                second=second,
                microsecond=microsecond,
            ).items()
            if v is not None
        }
        self.weeks = weeks
        self.weekday = weekday
        self.days = kwargs.get("days", 0)

    def __radd__(self, other: datetime | date) -> datetime | date:
        if not isinstance(other, date):
            return NotImplemented
        moved = other.replace(**self.fields) + timedelta(weeks=self.weeks, days=self.days)
        if self.weekday is not None:
            moved += timedelta(days=(self.weekday - moved.weekday()) % 7)
        return moved
