"""Tests for ``celery_docket.schedules``.

Unit tests pin the parser and the small API surface; the property tests use Celery's own
``celery.schedules`` as the oracle, because compatibility (including DST quirks) is the point.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celery_docket.schedules import (
    BaseSchedule,
    ParseException,
    crontab,
    crontab_parser,
    maybe_schedule,
    schedstate,
    schedule,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def app_in(zone: str | None, **extra: Any) -> SimpleNamespace:
    """Stand-in for an app: the schedules only read ``app.conf``."""
    return SimpleNamespace(conf=SimpleNamespace(timezone=zone, **extra))


def fixed(now: datetime) -> Callable[[], datetime]:
    return lambda: now


def berlin_utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> datetime:
    # Compare in UTC: aware datetimes inside a repeated hour never equal other zones' ones.
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN, fold=fold).astimezone(UTC)


# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("spec", "max_", "min_", "expected"),
    [
        ("*", 7, 0, set(range(7))),
        ("5", 60, 0, {5}),
        ("1-5", 60, 0, {1, 2, 3, 4, 5}),
        ("*/15", 60, 0, {0, 15, 30, 45}),
        ("1-30/5", 60, 0, {1, 6, 11, 16, 21, 26}),
        ("1,2,5", 60, 0, {1, 2, 5}),
        ("0, 30", 60, 0, {0, 30}),  # a space after a comma is fine
        ("1-3,10-12,*/20", 60, 0, {0, 1, 2, 3, 10, 11, 12, 20, 40}),
        ("22-2", 24, 0, {22, 23, 0, 1, 2}),  # ranges wrap past the maximum
        ("22-2/2", 24, 0, {22, 0, 2}),
        ("mon-fri", 7, 0, {1, 2, 3, 4, 5}),
        ("sun", 7, 0, {0}),
        ("SAT,Sunday", 7, 0, {6, 0}),
        ("fri-mon", 7, 0, {5, 6, 0, 1}),
        ("*/2", 7, 0, {0, 2, 4, 6}),
        ("*/3", 31, 1, {1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31}),
        ("2-12/2", 12, 1, {2, 4, 6, 8, 10, 12}),
        ("jan-mar", 12, 1, {1, 2, 3}),
        ("December", 12, 1, {12}),
        ("nov-feb", 12, 1, {11, 12, 1, 2}),
        ("*/5", 24, 0, {0, 5, 10, 15, 20}),
    ],
)
def test_parser_forms(spec: str, max_: int, min_: int, expected: set[int]) -> None:
    assert crontab_parser(max_, min_).parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "max_", "min_", "error"),
    [
        ("", 60, 0, ParseException),
        ("1,", 60, 0, ParseException),
        (",5", 60, 0, ParseException),
        ("*/", 60, 0, ParseException),
        ("1-5/", 60, 0, ParseException),
        ("99-100/", 60, 0, ParseException),  # the missing step is reported first
        ("-5", 60, 0, ParseException),
        ("60", 60, 0, ValueError),
        ("0", 31, 1, ValueError),
        ("13", 12, 1, ValueError),
        ("1-60", 60, 0, ValueError),
        ("foo", 60, 0, ValueError),
        ("5/2", 60, 0, ValueError),
        ("*/0", 60, 0, ValueError),
        ("*/x", 60, 0, ValueError),
        ("dec", 7, 0, ValueError),  # a month name, out of range for weekdays
    ],
)
def test_parser_rejects(spec: str, max_: int, min_: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        crontab_parser(max_, min_).parse(spec)


def test_parse_exception_is_not_a_value_error() -> None:
    # Matches Celery: code that catches ValueError does not swallow structural errors.
    assert not issubclass(ParseException, ValueError)
    assert crontab_parser.ParseException is ParseException


def test_crontab_argument_types() -> None:
    assert crontab(minute=7).minute == {7}
    assert crontab(minute={0, 30}).minute == {0, 30}
    assert crontab(minute=[0, 30]).minute == {0, 30}
    assert crontab(hour=range(9, 18)).hour == set(range(9, 18))
    assert crontab(day_of_week="mon-fri").day_of_week == {1, 2, 3, 4, 5}
    assert crontab(month_of_year="*/3").month_of_year == {1, 4, 7, 10}
    assert crontab(day_of_month=None).day_of_month == set(range(1, 32))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"minute": 60}, ValueError),
        ({"hour": [25]}, ValueError),
        ({"day_of_week": 7}, ValueError),
        ({"day_of_month": 0}, ValueError),
        ({"month_of_year": {13}}, ValueError),
        ({"minute": 1.5}, TypeError),
        ({"minute": ""}, ParseException),
        ({"hour": "*/"}, ParseException),
        ({"day_of_month": 30, "month_of_year": 2}, ValueError),  # 30 Feb never happens
    ],
)
def test_crontab_rejects(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        crontab(**kwargs)


def test_crontab_from_string_and_repr() -> None:
    c = crontab.from_string("*/15 9-17 1 * mon-fri")
    assert c == crontab(minute="*/15", hour="9-17", day_of_month=1, day_of_week="mon-fri")
    assert repr(crontab(0, "*/3")) == "<crontab: 0 */3 * * * (m/h/dM/MY/d)>"


# --------------------------------------------------------------------------- schedule


def test_schedule_numbers_and_timedelta() -> None:
    assert schedule(10).run_every == timedelta(seconds=10)
    assert schedule(2.5).seconds == 2.5
    assert schedule(timedelta(minutes=5)).seconds == 300
    assert schedule(timedelta(seconds=-5)).seconds == 0
    assert repr(schedule(10)) == "<freq: 10.00 seconds>"
    assert schedule(3600).human_seconds == "1.00 hour"
    assert schedule(90).human_seconds == "1.50 minutes"
    assert schedule(0).human_seconds == "now"


def test_schedule_is_due_and_remaining() -> None:
    last = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    early = schedule(60, nowfun=fixed(last + timedelta(seconds=20)))
    assert early.remaining_estimate(last) == timedelta(seconds=40)
    assert early.is_due(last) == schedstate(False, 40.0)
    late = schedule(60, nowfun=fixed(last + timedelta(seconds=90)))
    assert late.remaining_estimate(last) == timedelta(seconds=-30)
    assert late.is_due(last) == schedstate(True, 60.0)
    # Naive datetimes are UTC.
    assert late.remaining_estimate(last.replace(tzinfo=None)) == timedelta(seconds=-30)


def test_schedule_next_fire_after() -> None:
    after = datetime(2024, 3, 31, 0, 30, tzinfo=BERLIN)
    got = schedule(timedelta(hours=2)).next_fire_after(after)
    assert got == after.astimezone(UTC) + timedelta(hours=2)  # elapsed, not wall time
    assert got.astimezone(BERLIN).hour == 3  # the clock jumped forward in between
    assert got.utcoffset() == timedelta(0)
    assert schedule(10).next_fire_after(datetime(2024, 1, 1)) == datetime(
        2024, 1, 1, 0, 0, 10, tzinfo=UTC
    )
    assert schedule(0).next_fire_after(after) > after


def test_relative_schedule_rounds_to_the_clock() -> None:
    last = datetime(2024, 1, 1, 10, 17, 42, tzinfo=UTC)
    hourly = schedule(3600, relative=True, nowfun=fixed(last))
    assert hourly.next_fire_after(last) == datetime(2024, 1, 1, 11, 0, tzinfo=UTC)
    assert hourly.remaining_estimate(last) == timedelta(minutes=42, seconds=18)


def test_maybe_schedule() -> None:
    app = app_in("Europe/Berlin")
    assert maybe_schedule(None) is None
    assert maybe_schedule(30) == schedule(30)
    assert maybe_schedule(1.5) == schedule(1.5)
    made = maybe_schedule(timedelta(minutes=1), relative=True, app=app)
    assert isinstance(made, schedule) and made.relative and made.app is app
    cron = crontab(minute=0)
    assert maybe_schedule(cron) is cron
    assert maybe_schedule(cron, app=app) is cron and cron.tz == BERLIN


def test_equality() -> None:
    assert schedule(10) == schedule(timedelta(seconds=10))
    assert schedule(10) == timedelta(seconds=10)
    assert schedule(10) != schedule(11)
    assert crontab(minute="*/15") == crontab(minute=[0, 15, 30, 45])
    assert crontab(day_of_week="mon-fri") == crontab(day_of_week="1-5")
    assert crontab(minute=0) != crontab(minute=1)
    assert crontab(minute=0) != schedule(60)
    assert crontab(minute=0, nowfun=datetime.now) != crontab(minute=0)


def test_pickle_round_trip() -> None:
    for sched in (schedule(15, relative=True), crontab("*/5", "9-17", "mon-fri")):
        clone = pickle.loads(pickle.dumps(sched))
        assert clone == sched and type(clone) is type(sched)


# --------------------------------------------------------------------------- timezone handling


def test_timezone_comes_from_app_conf() -> None:
    assert crontab().tz == ZoneInfo("UTC")
    assert crontab(app=app_in("America/New_York")).tz == ZoneInfo("America/New_York")
    assert crontab(app=SimpleNamespace(conf={"timezone": "Asia/Kolkata"})).tz == ZoneInfo(
        "Asia/Kolkata"
    )
    assert crontab(app=app_in(None, enable_utc=True)).tz == ZoneInfo("UTC")
    local = crontab(app=app_in(None, enable_utc=False))
    assert local.utc_enabled is False and local.tz is not None
    late = crontab()
    late.app = app_in("Europe/Berlin")
    assert late.tz == BERLIN


def test_maybe_make_aware() -> None:
    c = crontab(app=app_in("Europe/Berlin"))
    naive = datetime(2024, 7, 1, 12, 0)
    assert c.maybe_make_aware(naive) == naive.replace(tzinfo=UTC)
    assert c.maybe_make_aware(naive).tzinfo == BERLIN
    assert c.maybe_make_aware(naive, naive_as_utc=False) == naive.replace(tzinfo=BERLIN)
    aware = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    assert c.maybe_make_aware(aware) is aware


def test_now_uses_nowfun_then_schedule_zone() -> None:
    pinned = datetime(2024, 1, 1, tzinfo=UTC)
    assert crontab(nowfun=fixed(pinned)).now() is pinned
    now = crontab(app=app_in("Europe/Berlin")).now()
    assert now.tzinfo == BERLIN
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_base_schedule_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        BaseSchedule().is_due(datetime.now(UTC))


# --------------------------------------------------------------------------- crontab timing


def test_crontab_next_fire_basic() -> None:
    c = crontab(minute="*/15")
    assert c.next_fire_after(datetime(2024, 1, 1, 10, 7, 30)) == datetime(
        2024, 1, 1, 10, 15, tzinfo=UTC
    )
    # Strictly after: an exact fire time moves on to the next one.
    assert c.next_fire_after(datetime(2024, 1, 1, 10, 15, tzinfo=UTC)) == datetime(
        2024, 1, 1, 10, 30, tzinfo=UTC
    )
    weekdays = crontab(minute=0, hour=9, day_of_week="mon-fri")
    friday_evening = datetime(2024, 1, 5, 18, 0, tzinfo=UTC)
    assert weekdays.next_fire_after(friday_evening) == datetime(2024, 1, 8, 9, 0, tzinfo=UTC)


def test_crontab_next_fire_in_local_zone() -> None:
    c = crontab(minute=0, hour=9, app=app_in("Europe/Berlin"))
    got = c.next_fire_after(datetime(2024, 7, 1, 8, 0, tzinfo=UTC))  # 10:00 in Berlin
    assert got == berlin_utc(2024, 7, 2, 9, 0)
    assert got.tzinfo is UTC


def test_crontab_dst_gap_fires_after_the_jump() -> None:
    # Berlin skips 02:00-03:00 on 2024-03-31; a 02:30 job runs at 03:30 CEST, like Celery.
    c = crontab(minute=30, hour=2, app=app_in("Europe/Berlin"))
    got = c.next_fire_after(datetime(2024, 3, 30, 12, 0, tzinfo=UTC))
    assert got == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert got.astimezone(BERLIN).hour == 3


def test_crontab_dst_repeated_hour() -> None:
    # Berlin repeats 02:00-03:00 on 2024-10-27 (first CEST, then CET).
    c = crontab(minute="*/15", app=app_in("Europe/Berlin"))
    first_pass = datetime(2024, 10, 27, 2, 30, tzinfo=BERLIN, fold=0)
    assert c.next_fire_after(first_pass) == berlin_utc(2024, 10, 27, 2, 45)
    # From the first 02:45 the wall clock continues at 03:00, skipping the repeated hour.
    assert c.next_fire_after(berlin_utc(2024, 10, 27, 2, 45)) == berlin_utc(2024, 10, 27, 3, 0)
    # In the second pass Celery would point back into the past; we stay strictly after.
    second_pass = berlin_utc(2024, 10, 27, 2, 30, fold=1)
    assert c.next_fire_after(second_pass) == berlin_utc(2024, 10, 27, 2, 45, fold=1)


def test_crontab_rare_spec_is_fast() -> None:
    # 29 February on a Monday: the search jumps by month, so decades cost nothing.
    c = crontab(minute=0, hour=0, day_of_month=29, month_of_year=2, day_of_week="mon")
    start = time.perf_counter()
    got = c.next_fire_after(datetime(2024, 3, 1, tzinfo=UTC))
    assert time.perf_counter() - start < 0.05
    assert got == datetime(2044, 2, 29, tzinfo=UTC)
    # 40 years on, past 2100 (not a leap year), the next one is 2112.
    assert c.next_fire_after(datetime(2072, 3, 1, tzinfo=UTC)) == datetime(2112, 2, 29, tzinfo=UTC)


def test_crontab_starting_deadline_skips_stale_runs() -> None:
    now = datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    app = app_in(None, beat_cron_starting_deadline=60)
    c = crontab(minute=0, app=app, nowfun=fixed(now))
    # The 12:00 run was missed by 30 minutes, more than the 60 s deadline: skip it.
    assert c.is_due(datetime(2024, 1, 1, 11, 0, tzinfo=UTC)) == schedstate(False, 1800.0)
    assert crontab(minute=0, nowfun=fixed(now)).is_due(datetime(2024, 1, 1, 11, 0)).is_due


# --------------------------------------------------------------------------- Celery as the oracle

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Sao_Paulo",  # used to jump at midnight
    "Asia/Kolkata",  # half-hour offset, no DST
)


def _transitions(key: str, start: int = 2015, end: int = 2032) -> list[datetime]:
    """UTC instants where the zone's offset changes, to aim examples at DST edges."""
    zone = ZoneInfo(key)
    found = []
    t = datetime(start, 1, 1, tzinfo=UTC)
    stop = datetime(end, 1, 1, tzinfo=UTC)
    step = timedelta(days=1)
    while t < stop:
        if t.astimezone(zone).utcoffset() != (t + step).astimezone(zone).utcoffset():
            lo, hi = t, t + step
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi.replace(second=0, microsecond=0))
        t += step
    return found


TRANSITIONS = {key: _transitions(key) for key in ZONES}


@pytest.fixture(scope="module")
def oracle() -> Any:
    """Celery's schedules module plus a cache of Celery apps per (zone, deadline)."""
    celery = pytest.importorskip("celery")
    schedules = pytest.importorskip("celery.schedules")
    apps: dict[tuple[str, int | None], Any] = {}

    def app_for(zone: str, deadline: int | None = None) -> Any:
        if (zone, deadline) not in apps:
            app = celery.Celery(f"oracle-{zone}-{deadline}", set_as_current=False)
            app.conf.timezone = zone
            app.conf.beat_cron_starting_deadline = deadline
            apps[zone, deadline] = app
        return apps[zone, deadline]

    return SimpleNamespace(schedules=schedules, app_for=app_for)


DAY_NAMES = ["sun", "Mon", "tue", "WED", "thursday", "fri", "Saturday"]
MONTH_NAMES = ["jan", "Feb", "mar", "april", "MAY", "jun", "jul", "aug", "sep", "Oct", "nov", "dec"]


def cron_field(size: int, first: int = 0, names: list[str] | None = None) -> st.SearchStrategy:
    """Every way Celery accepts a field: '*', int, set, list, or a cron string."""
    number = st.integers(first, first + size - 1)
    value = number.map(str)
    if names:
        value = value | st.sampled_from(names)
    step = st.integers(1, size + 1).map(str)
    item = st.one_of(
        value,
        st.tuples(value, value).map("-".join),
        step.map(lambda n: f"*/{n}"),
        st.tuples(st.tuples(value, value).map("-".join), step).map("/".join),
        st.just("*"),
    )
    text = st.lists(item, min_size=1, max_size=4).map(",".join)
    return st.one_of(
        st.just("*"),
        number,
        st.sets(number, min_size=1, max_size=5),
        st.lists(number, min_size=1, max_size=5),
        text,
    )


cron_specs = st.fixed_dictionaries(
    {
        "minute": cron_field(60),
        "hour": cron_field(24),
        "day_of_week": cron_field(7, 0, DAY_NAMES),
        "day_of_month": st.one_of(st.just("*"), st.just("*"), cron_field(31, 1)),
        "month_of_year": st.one_of(st.just("*"), st.just("*"), cron_field(12, 1, MONTH_NAMES)),
    }
)


@st.composite
def moments(draw: st.DrawFn, zone: str) -> datetime:
    """An instant, often close to a DST change, as naive UTC, aware UTC or aware local."""
    if draw(st.booleans()) and TRANSITIONS[zone]:
        base = draw(st.sampled_from(TRANSITIONS[zone]))
        shift = draw(
            st.one_of(
                st.integers(-26 * 60, 26 * 60).map(lambda m: timedelta(minutes=m)),
                st.integers(-26 * 3600, 26 * 3600).map(lambda s: timedelta(seconds=s)),
            )
        )
        instant = base + shift
    else:
        instant = draw(
            st.datetimes(datetime(2015, 1, 1), datetime(2032, 12, 31), timezones=st.just(UTC))
        )
        if draw(st.booleans()):
            instant = instant.replace(second=0, microsecond=0)
    form = draw(st.sampled_from(["naive", "utc", "local"]))
    if form == "naive":
        return instant.replace(tzinfo=None)
    return instant if form == "utc" else instant.astimezone(ZoneInfo(zone))


@st.composite
def cron_cases(draw: st.DrawFn) -> tuple[str, dict[str, Any], datetime, datetime]:
    zone = draw(st.sampled_from(ZONES))
    spec = draw(cron_specs)
    last = draw(moments(zone))
    lag = draw(
        st.one_of(st.integers(-600, 7200), st.integers(0, 400 * 86400), st.sampled_from([0]))
    )
    last_utc = last.replace(tzinfo=UTC) if last.tzinfo is None else last
    now = (last_utc + timedelta(seconds=lag)).astimezone(ZoneInfo(zone))
    return zone, spec, last, now


def our_error(exc: BaseException, oracle: Any) -> type[BaseException]:
    """The exception type we must raise where Celery raised ``exc``."""
    return ParseException if isinstance(exc, oracle.schedules.ParseException) else type(exc)


def both_crontabs(
    oracle: Any, zone: str, spec: dict[str, Any], now: datetime, deadline: int | None = None
) -> tuple[Any, crontab] | None:
    """The same spec as a Celery crontab and ours, or None when Celery rejects it too."""
    app = oracle.app_for(zone, deadline)
    try:
        theirs = oracle.schedules.crontab(**spec, app=app, nowfun=fixed(now))
    except Exception as exc:  # noqa: BLE001 - the oracle's error, whatever it is, is compared
        with pytest.raises(our_error(exc, oracle)):
            crontab(**spec, app=app, nowfun=fixed(now))
        return None
    ours = crontab(
        **spec, app=app_in(zone, beat_cron_starting_deadline=deadline), nowfun=fixed(now)
    )
    return theirs, ours


ORACLE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ORACLE
@given(case=cron_cases(), deadline=st.sampled_from([None, None, 30, 3600]))
def test_crontab_matches_celery(
    oracle: Any, case: tuple[str, dict[str, Any], datetime, datetime], deadline: int | None
) -> None:
    zone, spec, last, now = case
    pair = both_crontabs(oracle, zone, spec, now, deadline)
    if pair is None:
        return
    theirs, ours = pair
    assert ours == ours and ours.minute == theirs.minute and ours.hour == theirs.hour
    assert ours.day_of_week == theirs.day_of_week
    assert ours.day_of_month == theirs.day_of_month
    assert ours.month_of_year == theirs.month_of_year
    assert ours.remaining_estimate(last) == theirs.remaining_estimate(last)
    assert ours.is_due(last) == tuple(theirs.is_due(last))


@ORACLE
@given(case=cron_cases())
def test_next_fire_after_matches_celery(
    oracle: Any, case: tuple[str, dict[str, Any], datetime, datetime]
) -> None:
    zone, spec, last, _ = case
    last_utc = last.replace(tzinfo=UTC) if last.tzinfo is None else last.astimezone(UTC)
    # With the clock pinned at last_run_at, last_run_at + remaining is Celery's next run.
    pair = both_crontabs(oracle, zone, spec, last)
    if pair is None:
        return
    theirs, ours = pair
    expected = last_utc + theirs.remaining_estimate(last)
    got = ours.next_fire_after(last)
    assert got.tzinfo is UTC
    if expected > last_utc:
        assert got == expected
    else:
        # Second pass of a repeated hour: Celery points at the first pass, already gone.
        wall = expected.astimezone(ZoneInfo(zone)).replace(fold=1)
        assert got == wall.astimezone(UTC) > last_utc


intervals = st.one_of(
    st.integers(1, 59),
    st.integers(60, 6 * 3600),
    st.sampled_from([60, 300, 900, 1800, 3600, 5400, 7200, 86400, 90000, 2 * 86400, 7 * 86400]),
    st.floats(0.1, 3 * 86400),
).map(lambda s: timedelta(seconds=s))


@ORACLE
@given(
    zone=st.sampled_from(ZONES),
    every=intervals,
    relative=st.booleans(),
    data=st.data(),
)
def test_schedule_matches_celery(
    oracle: Any, zone: str, every: timedelta, relative: bool, data: st.DataObject
) -> None:
    last = data.draw(moments(zone))
    lag = data.draw(st.integers(-3600, 4 * 86400))
    last_utc = last.replace(tzinfo=UTC) if last.tzinfo is None else last
    now = (last_utc + timedelta(seconds=lag)).astimezone(ZoneInfo(zone))
    app = oracle.app_for(zone)
    theirs = oracle.schedules.schedule(every, relative, nowfun=fixed(now), app=app)
    ours = schedule(every, relative, nowfun=fixed(now), app=app_in(zone))
    assert ours == theirs.run_every and ours.seconds == theirs.seconds
    assert repr(ours) == repr(theirs)
    assert ours.remaining_estimate(last) == theirs.remaining_estimate(last)
    assert ours.is_due(last) == tuple(theirs.is_due(last))


# Characters that exercise every branch of the parser, including the odd ones.
_PARSER_ALPHABET = "0123456789*/-, monfrijadecMOx_\n"


@ORACLE
@given(
    spec=st.text(_PARSER_ALPHABET, max_size=12),
    bounds=st.sampled_from([(60, 0), (24, 0), (7, 0), (31, 1), (12, 1)]),
)
def test_parser_matches_celery_on_any_text(oracle: Any, spec: str, bounds: tuple[int, int]) -> None:
    try:
        expected = oracle.schedules.crontab_parser(*bounds).parse(spec)
    except Exception as exc:  # noqa: BLE001 - the oracle's error, whatever it is, is compared
        with pytest.raises(our_error(exc, oracle)):
            crontab_parser(*bounds).parse(spec)
    else:
        assert crontab_parser(*bounds).parse(spec) == expected


def test_parse_exception_matches_celery(oracle: Any) -> None:
    assert issubclass(ParseException, Exception)
    assert issubclass(ParseException, ValueError) == issubclass(
        oracle.schedules.ParseException, ValueError
    )
