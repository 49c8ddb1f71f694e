"""Celery-compatible periodic schedules (``celery.schedules`` drop-in).

A ``beat_schedule`` written for Celery keeps working after swapping
``from celery.schedules import crontab`` for ``from celery_docket.schedules import crontab``:
the constructors, the cron syntax, the exceptions and the ``is_due`` /
``remaining_estimate`` results follow Celery 5.x, including its wall-clock handling of
daylight-saving transitions.

The engine's beat does not poll ``is_due``; it asks each schedule for
:meth:`schedule.next_fire_after` / :meth:`crontab.next_fire_after`, which return absolute
UTC instants so that timers can be armed without any clock arithmetic of their own.

``solar`` schedules are not provided.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from calendar import monthrange
from collections import namedtuple
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from numbers import Real
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .cron import Cronspec, ParseException, crontab_parser, expand_field

__all__ = (
    "BaseSchedule",
    "ParseException",
    "crontab",
    "crontab_parser",
    "maybe_schedule",
    "schedstate",
    "schedule",
)

#: ``(is_due, next)``: whether to run now, and how many seconds until it is worth asking again.
schedstate = namedtuple("schedstate", ("is_due", "next"))

_UTC_ZONE = ZoneInfo("UTC")
_ONE_DAY = timedelta(days=1)
_ONE_HOUR = timedelta(hours=1)
_ONE_MINUTE = timedelta(minutes=1)
_TINY = timedelta(microseconds=1)

# Longest possible month lengths (leap-year February): a spec is only rejected outright when
# none of its days can ever exist in any of its months.
_MAX_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_TIME_UNITS = (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0))


# --------------------------------------------------------------------------- time helpers


def _is_naive(dt: datetime) -> bool:
    return dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None


def _as_utc(dt: datetime) -> datetime:
    """Aware copy in UTC; naive values are taken to be UTC, as Celery does."""
    if _is_naive(dt):
        return dt.replace(tzinfo=dt_timezone.utc)
    return dt.astimezone(dt_timezone.utc)


def _wall_exists(dt: datetime) -> bool:
    """False for local times skipped by a forward DST jump (they cannot survive a UTC trip)."""
    back = dt.astimezone(dt_timezone.utc).astimezone(dt.tzinfo)
    return back.replace(tzinfo=None) == dt.replace(tzinfo=None)


def _skip_gap(dt: datetime) -> datetime:
    """Move a non-existent local time forward by the size of the gap it falls in."""
    if _wall_exists(dt):
        return dt
    after = (dt + _ONE_DAY).utcoffset()
    before = (dt - _ONE_DAY).utcoffset()
    if after is None or before is None or after <= before:
        return dt
    return dt + (after - before)


def _local_zone() -> tzinfo:
    """System zone for ``enable_utc=False`` without a ``timezone`` setting (Celery's fallback)."""
    key = os.environ.get("TZ", "").lstrip(":")
    if key:
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        with open("/etc/localtime", "rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError):
        pass
    return datetime.now().astimezone().tzinfo or dt_timezone.utc


def _setting(app: Any, name: str, default: Any = None) -> Any:
    """Read ``app.conf.<name>`` from a Celery app, our app, or any object with a ``conf``."""
    conf = getattr(app, "conf", None)
    if conf is None:
        return default
    try:
        # Attribute first: settings objects may derive values there (Django's TIME_ZONE).
        return getattr(conf, name)
    except AttributeError:
        pass
    if isinstance(conf, Mapping):
        return conf.get(name, default)
    return default


def _humanize(secs: float) -> str:
    """Celery's wording ("1.00 minute", "2.50 hours", "now") so reprs and logs read the same."""
    secs = round(float(secs), 2)
    for unit, size in _TIME_UNITS:
        if secs >= size:
            amount = secs / size
            return f"{amount:.2f} {unit}{'' if amount == 1 else 's'}"
    return "now"


# --------------------------------------------------------------------------- base class


class BaseSchedule:
    """Shared clock and timezone plumbing.

    The timezone comes from ``app.conf.timezone`` (a zone name or ``tzinfo``); without one it
    is UTC, or the system zone when ``app.conf.enable_utc`` is false, mirroring Celery.
    With no app at all the schedule runs in UTC.
    """

    def __init__(self, nowfun: Callable[[], datetime] | None = None, app: Any = None) -> None:
        self.nowfun = nowfun
        self._app = app
        self._tz: tzinfo | None = None

    @property
    def app(self) -> Any:
        return self._app

    @app.setter
    def app(self, app: Any) -> None:
        self._app = app
        self._tz = None  # the zone is derived from the app, so forget the old one

    @property
    def tz(self) -> tzinfo:
        if self._tz is None:
            self._tz = self._resolve_tz()
        return self._tz

    def _resolve_tz(self) -> tzinfo:
        zone = _setting(self._app, "timezone")
        if isinstance(zone, tzinfo):
            return zone
        if zone:
            return ZoneInfo(str(zone))
        return _UTC_ZONE if self.utc_enabled else _local_zone()

    @property
    def utc_enabled(self) -> bool:
        return bool(_setting(self._app, "enable_utc", True))

    def now(self) -> datetime:
        """Current time: ``nowfun`` if given (tests pin the clock), else the app's or our own."""
        if self.nowfun is not None:
            return self.nowfun()
        app_now = getattr(self._app, "now", None)
        if callable(app_now):
            current: datetime = app_now()
            return current
        return datetime.now(dt_timezone.utc).astimezone(self.tz)

    def maybe_make_aware(self, dt: datetime, naive_as_utc: bool = True) -> datetime:
        """Attach a zone to naive values (UTC, shown in the schedule's zone); leave aware ones.

        With ``naive_as_utc=False`` a naive value is read as wall time in the schedule's zone.
        """
        if not _is_naive(dt):
            return dt
        if naive_as_utc:
            return dt.replace(tzinfo=_UTC_ZONE).astimezone(self.tz)
        return dt.replace(tzinfo=self.tz)

    def to_local(self, dt: datetime) -> datetime:
        """Celery's helper: with ``enable_utc`` off, express ``dt`` in the system zone."""
        if self.utc_enabled:
            return dt
        zone = _local_zone()
        if _is_naive(dt):
            return dt.replace(tzinfo=zone)
        return dt.astimezone(zone) if dt.tzinfo == _UTC_ZONE else dt

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        raise NotImplementedError

    def is_due(self, last_run_at: datetime) -> schedstate:
        raise NotImplementedError

    def next_fire_after(self, after: datetime) -> datetime:
        raise NotImplementedError

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, BaseSchedule):
            return other.nowfun == self.nowfun
        return NotImplemented


# --------------------------------------------------------------------------- interval schedule


def _round_down(dt: datetime, every: timedelta) -> datetime:
    """Truncate to the coarsest unit (day, hour, minute) the interval spans; keep zone and fold."""
    secs = max(every.total_seconds(), 0)
    if secs >= 86400:
        return datetime(dt.year, dt.month, dt.day, tzinfo=dt.tzinfo, fold=dt.fold)
    if secs >= 3600:
        return datetime(dt.year, dt.month, dt.day, dt.hour, tzinfo=dt.tzinfo, fold=dt.fold)
    if secs >= 60:
        return dt.replace(second=0, microsecond=0)
    return dt


def _boundary_instants(dt: datetime, every: timedelta) -> list[datetime]:
    """UTC instants of the rounded local boundary, once per fold (they differ when repeated)."""
    boundary = _round_down(dt, every).replace(microsecond=0)
    found = []
    for fold in (0, 1):
        local = _skip_gap(boundary.replace(fold=fold))
        found.append(local.astimezone(dt_timezone.utc))
    return found


def _relative_deadline(start: datetime, every: timedelta) -> datetime:
    """Deadline of a ``relative=True`` schedule, as a UTC instant.

    Celery rounds ``start + every`` down to the interval's clock unit in ``start``'s zone, so
    an hourly job started at 10:17 next runs at 11:00. Day-sized intervals step in calendar
    days (local midnight); shorter ones in elapsed time. DST folds are resolved so that the
    deadline lands after ``start`` and no later than ``start + every`` when possible.
    """
    start_utc = start.astimezone(dt_timezone.utc)
    if every >= _ONE_DAY:
        end_local = start + every  # wall-clock days
        future = [c for c in _boundary_instants(end_local, every) if c > start_utc]
        return min(future) if future else end_local.astimezone(dt_timezone.utc)
    end_utc = start_utc + every
    end_local = end_utc.astimezone(start.tzinfo)
    candidates = _boundary_instants(end_local, every)
    in_time = [c for c in candidates if c <= end_utc]
    deadline = max(in_time) if in_time else min(candidates)
    if every >= _ONE_MINUTE and deadline <= start_utc:
        # A partial-hour fall-back can round to a boundary at or before start; also consider
        # the next clock boundary and the wall-clock one.
        unit = _ONE_HOUR if every >= _ONE_HOUR else _ONE_MINUTE
        candidates += _boundary_instants(end_local + unit, every)
        candidates += _boundary_instants(start + every, every)
        future = [c for c in candidates if c > start_utc]
        in_time = [c for c in future if c <= end_utc]
        deadline = max(in_time) if in_time else min(future, default=end_utc)
    return deadline


class schedule(BaseSchedule):  # noqa: N801 - Celery's name
    """Run every ``run_every`` (seconds or ``timedelta``).

    With ``relative=True`` the next run is rounded down to the interval's clock unit
    (e.g. hourly jobs run on the hour), as in Celery.
    """

    relative: bool = False

    def __init__(
        self,
        run_every: float | timedelta | None = None,
        relative: bool = False,
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        if isinstance(run_every, Real):
            run_every = timedelta(seconds=float(run_every))
        self.run_every: timedelta = run_every  # type: ignore[assignment]
        self.relative = relative
        super().__init__(nowfun=nowfun, app=app)

    def _deadline(self, start: datetime) -> datetime:
        if self.relative:
            return _relative_deadline(start, self.run_every)
        return start.astimezone(dt_timezone.utc) + self.run_every

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        """Time from now until ``last_run_at + run_every`` (negative when overdue)."""
        deadline = self._deadline(self.maybe_make_aware(last_run_at))
        return deadline - _as_utc(self.maybe_make_aware(self.now()))

    def is_due(self, last_run_at: datetime) -> schedstate:
        """``(True, seconds until the following run)`` when due, else ``(False, seconds left)``."""
        last_run_at = self.maybe_make_aware(last_run_at)
        left = max(self.remaining_estimate(last_run_at).total_seconds(), 0)
        if left:
            return schedstate(is_due=False, next=left)
        wait = self.seconds
        if self.relative:
            # Rounded deadlines drift from the plain interval (DST, late runs): re-align.
            now = self.maybe_make_aware(self.now()).astimezone(last_run_at.tzinfo)
            realigned = self.remaining_estimate(now).total_seconds()
            if realigned > 0:
                wait = realigned
        return schedstate(is_due=True, next=wait)

    def next_fire_after(self, after: datetime) -> datetime:
        """First run strictly after ``after``, as an aware UTC datetime (engine beat API).

        This is ``after + run_every`` (naive ``after`` is UTC). For ``relative=True`` it is the
        rounded deadline Celery would use. Non-positive intervals are clamped to one
        microsecond so the result always moves forward.
        """
        after = self.maybe_make_aware(after)
        after_utc = after.astimezone(dt_timezone.utc)
        step = max(self.run_every, _TINY)
        if self.relative:
            deadline = _relative_deadline(after, self.run_every)
            if deadline > after_utc:
                return deadline
        return after_utc + step

    @property
    def seconds(self) -> int | float:
        return max(self.run_every.total_seconds(), 0)

    @property
    def human_seconds(self) -> str:
        return _humanize(self.seconds)

    def __repr__(self) -> str:
        return f"<freq: {self.human_seconds}>"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, schedule):
            return self.run_every == other.run_every
        return bool(self.run_every == other)

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.run_every, self.relative, self.nowfun)


# --------------------------------------------------------------------------- crontab


class crontab(BaseSchedule):  # noqa: N801 - Celery's name
    """Cron-style schedule: run at every minute that matches all five fields.

    Fields take an int, a set/list of ints, or a cron string (``'*/15'``, ``'1-30/5'``,
    ``'0,30'``, ``'mon-fri'``, ``'jan-mar'``). Day of week counts from Sunday = 0. Unlike
    Vixie cron, day of month and day of week must *both* match, as in Celery.

    Times are wall-clock times in the app's timezone. Across DST changes this follows
    Celery: a time skipped by a spring-forward jump fires right after the jump (02:30 fires
    at 03:30), and a repeated hour fires on its first pass only.
    """

    def __init__(
        self,
        minute: Cronspec | None = "*",
        hour: Cronspec | None = "*",
        day_of_week: Cronspec | None = "*",
        day_of_month: Cronspec | None = "*",
        month_of_year: Cronspec | None = "*",
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        self._orig_minute = "*" if minute is None else minute
        self._orig_hour = "*" if hour is None else hour
        self._orig_day_of_week = "*" if day_of_week is None else day_of_week
        self._orig_day_of_month = "*" if day_of_month is None else day_of_month
        self._orig_month_of_year = "*" if month_of_year is None else month_of_year
        # Same order as Celery, so a spec with several bad fields fails on the same one.
        self.hour = expand_field(self._orig_hour, 24)
        self.minute = expand_field(self._orig_minute, 60)
        self.day_of_week = expand_field(self._orig_day_of_week, 7)
        self.day_of_month = expand_field(self._orig_day_of_month, 31, 1)
        self.month_of_year = expand_field(self._orig_month_of_year, 12, 1)
        if not any(
            day <= _MAX_MONTH_DAYS[month]
            for month in self.month_of_year
            for day in self.day_of_month
        ):
            raise ValueError(
                f"no day in day_of_month={self._orig_day_of_month!r} exists in any month of "
                f"month_of_year={self._orig_month_of_year!r}"
            )
        super().__init__(nowfun=nowfun, app=app)

    @classmethod
    def from_string(cls, spec: str, **kwargs: Any) -> crontab:
        """Build from a classic five-field line: ``'minute hour day month weekday'``."""
        minute, hour, day_of_month, month_of_year, day_of_week = spec.split()
        return cls(minute, hour, day_of_week, day_of_month, month_of_year, **kwargs)

    # -- calendar search ------------------------------------------------------------------

    def _date_matches(self, day: date) -> bool:
        return (
            day.month in self.month_of_year
            and day.day in self.day_of_month
            and day.isoweekday() % 7 in self.day_of_week
        )

    def _next_date(self, day: date) -> date:
        """First matching date strictly after ``day``, walking only the allowed months/days."""
        months = sorted(self.month_of_year)
        days = sorted(self.day_of_month)
        year, month, first_day = day.year, day.month, day.day + 1
        # Every real (month, day) pair meets every weekday within one 400-year cycle.
        for _ in range(12 * 401):
            if month in self.month_of_year:
                month_len = monthrange(year, month)[1]
                for dom in days[bisect_right(days, first_day - 1) :]:
                    if dom > month_len:
                        break
                    candidate = date(year, month, dom)
                    if candidate.isoweekday() % 7 in self.day_of_week:
                        return candidate
            idx = bisect_right(months, month)
            if idx == len(months):
                year, month = year + 1, months[0]
            else:
                month = months[idx]
            first_day = 1
        raise RuntimeError(f"{self!r} never fires")  # pragma: no cover - unreachable

    def _next_wall(self, wall: datetime) -> datetime:
        """First matching naive local time strictly after naive ``wall``."""
        minutes = sorted(self.minute)
        hours = sorted(self.hour)
        today = wall.date()
        if self._date_matches(today):
            if wall.hour in self.hour:
                i = bisect_right(minutes, wall.minute)
                if i < len(minutes):
                    return datetime(today.year, today.month, today.day, wall.hour, minutes[i])
            i = bisect_right(hours, wall.hour)
            if i < len(hours):
                return datetime(today.year, today.month, today.day, hours[i], minutes[0])
        day = self._next_date(today)
        return datetime(day.year, day.month, day.day, hours[0], minutes[0])

    def _celery_next(self, last_run_at: datetime) -> tuple[datetime, datetime]:
        """(next run as Celery computes it, last_run_at) as aware UTC instants.

        The next run is the next matching wall time after ``last_run_at``'s wall time, read
        with ``fold=0``: skipped times move forward past the gap and repeated times mean
        their first occurrence.
        """
        tz = self.tz
        last_local = self.maybe_make_aware(last_run_at).astimezone(tz)
        wall = self._next_wall(last_local.replace(tzinfo=None, fold=0))
        return wall.replace(tzinfo=tz).astimezone(dt_timezone.utc), _as_utc(last_local)

    # -- public API -----------------------------------------------------------------------

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        """Time from now until the first match after ``last_run_at`` (negative if overdue)."""
        target, _ = self._celery_next(last_run_at)
        return target - _as_utc(self.maybe_make_aware(self.now()))

    def is_due(self, last_run_at: datetime) -> schedstate:
        """``(due, seconds to wait)`` as Celery computes it.

        ``app.conf.beat_cron_starting_deadline`` (seconds), when set, stops a stale missed run
        from firing: if no matching time falls within that window before now, the run is
        skipped rather than caught up.
        """
        remaining = self.remaining_estimate(last_run_at).total_seconds()
        due = remaining <= 0
        skipped = False
        deadline = _setting(self._app, "beat_cron_starting_deadline")
        if deadline is not None and remaining < 0:
            now = self.maybe_make_aware(self.now())
            window_start = (_as_utc(now) - timedelta(seconds=deadline) - _TINY).astimezone(
                now.tzinfo
            )
            if self.remaining_estimate(window_start).total_seconds() > 0:
                skipped = True
                due = False
        if due or skipped:
            remaining = self.remaining_estimate(self.now()).total_seconds()
        return schedstate(due, max(remaining, 0))

    def next_fire_after(self, after: datetime) -> datetime:
        """First run strictly after ``after``, as an aware UTC datetime (engine beat API).

        Evaluated in the schedule's timezone with Celery's DST rules (see the class doc),
        jumping month → day → hour → minute rather than scanning. Naive ``after`` is UTC.
        One deliberate difference: when ``after`` lies in the *second* pass of a repeated
        hour, Celery points back to the first pass (already past, so it keeps firing); here
        the repeated wall time is taken in the current pass instead, so the result is always
        strictly after ``after``.
        """
        after_utc = _as_utc(after)
        tz = self.tz
        wall = after_utc.astimezone(tz).replace(tzinfo=None, fold=0)
        for _ in range(4):  # one step always suffices in real zones; stay safe anyway
            wall = self._next_wall(wall)
            for fold in (0, 1):
                instant = wall.replace(tzinfo=tz, fold=fold).astimezone(dt_timezone.utc)
                if instant > after_utc:
                    return instant
        raise RuntimeError(f"{self!r} found no run after {after!r}")  # pragma: no cover

    def __repr__(self) -> str:
        return (
            f"<crontab: {self._orig_minute} {self._orig_hour} {self._orig_day_of_month} "
            f"{self._orig_month_of_year} {self._orig_day_of_week} (m/h/dM/MY/d)>"
        )

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, crontab):
            return (
                other.month_of_year == self.month_of_year
                and other.day_of_month == self.day_of_month
                and other.day_of_week == self.day_of_week
                and other.hour == self.hour
                and other.minute == self.minute
                and super().__eq__(other)
            )
        return NotImplemented

    def __reduce__(self) -> tuple[Any, ...]:
        args = (
            self._orig_minute,
            self._orig_hour,
            self._orig_day_of_week,
            self._orig_day_of_month,
            self._orig_month_of_year,
            self.nowfun,
        )
        return self.__class__, args


def maybe_schedule(
    s: float | timedelta | BaseSchedule | None, relative: bool = False, app: Any = None
) -> BaseSchedule | None:
    """Coerce a beat entry's ``schedule`` value: numbers and timedeltas become ``schedule``.

    Schedule objects pass through; a given ``app`` is attached to them (an omitted one
    leaves theirs alone, since without Celery's ``current_app`` there is nothing to fall
    back to).
    """
    if s is None:
        return None
    if isinstance(s, (int, float)):
        s = timedelta(seconds=s)
    if isinstance(s, timedelta):
        return schedule(s, relative, app=app)
    if app is not None:
        s.app = app
    return s
