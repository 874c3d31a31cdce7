"""Business calendars: worked cases, a brute-force reference under hypothesis, validation.

The worked cases are the documentation: each expected value is worked out by hand in the
comment next to it. The property test compares the calendar with a reference that walks UTC
minute by minute and reads the local wall clock, written independently of the module.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import accumulate, groupby, pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from holidays import HolidayBase, country_holidays
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sla.domain.calendar import BusinessCalendar, CalendarSpec

NEW_YORK = ZoneInfo("America/New_York")
MOSCOW = ZoneInfo("Europe/Moscow")
LONDON = ZoneInfo("Europe/London")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
ALL_DAYS = (*WEEKDAYS, "sat", "sun")
H = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
US = timedelta(microseconds=1)


def hours(*intervals: str) -> list[dict[str, str]]:
    """hours("09:00-13:00", "14:00-18:00") in the spec's JSON shape."""
    return [dict(zip(("start", "end"), i.split("-"), strict=True)) for i in intervals]


def week(*intervals: str, days: tuple[str, ...] = WEEKDAYS) -> dict[str, Any]:
    return {day: hours(*intervals) for day in days}


def calendar(timezone: str = "UTC", **spec: Any) -> BusinessCalendar:
    return BusinessCalendar.from_spec(
        CalendarSpec.model_validate({"name": "Test", "timezone": timezone} | spec)
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- Worked cases --------------------------------------------------------------------------


def test_new_yorks_spring_forward_day_has_23_hours_and_office_hours_keep_their_wall_time() -> None:
    # 2026-03-08, 02:00 EST (-05:00) becomes 03:00 EDT (-04:00).
    always = calendar("America/New_York", week=week("00:00-24:00", days=ALL_DAYS))
    midnight = datetime(2026, 3, 8, tzinfo=NEW_YORK)  # 05:00Z
    assert always.between(midnight, datetime(2026, 3, 9, tzinfo=NEW_YORK)) == 23 * H
    assert always.add(midnight, 12 * H) == utc(2026, 3, 8, 17)  # 13:00 EDT, not 12:00

    office = calendar("America/New_York", week=week("09:00-17:00", days=ALL_DAYS))
    assert office.between(midnight, datetime(2026, 3, 9, tzinfo=NEW_YORK)) == 8 * H
    # Saturday 16:00 EST (21:00Z) + 1 h to 17:00 EST (22:00Z); Sunday 09:00 EDT is 13:00Z, + 1 h.
    assert office.add(datetime(2026, 3, 7, 16, tzinfo=NEW_YORK), 2 * H) == utc(2026, 3, 8, 14)

    # Wall times in the gap never occur: 02:00-03:00 counts nothing, 01:30-02:30 half an hour.
    for sunday, expected in (("02:00-03:00", timedelta(0)), ("01:30-02:30", 30 * MINUTE)):
        night = calendar("America/New_York", week={"sun": hours(sunday)})
        assert night.between(midnight, datetime(2026, 3, 9, tzinfo=NEW_YORK)) == expected


def test_new_yorks_fall_back_day_has_25_hours_and_the_repeated_hour_counts_twice() -> None:
    # 2026-11-01, 02:00 EDT (-04:00) becomes 01:00 EST (-05:00).
    always = calendar("America/New_York", week=week("00:00-24:00", days=ALL_DAYS))
    midnight = datetime(2026, 11, 1, tzinfo=NEW_YORK)  # 04:00Z
    next_midnight = datetime(2026, 11, 2, tzinfo=NEW_YORK)  # 05:00Z
    assert always.between(midnight, next_midnight) == 25 * H
    # 04:00Z + 2 h = 06:00Z, which New York shows as the second 01:00 (EST, fold=1).
    deadline = always.add(midnight, 2 * H)
    assert deadline == utc(2026, 11, 1, 6)
    assert (deadline.astimezone(NEW_YORK).hour, deadline.astimezone(NEW_YORK).fold) == (1, 1)

    night = calendar("America/New_York", week={"sun": hours("01:00-02:00")})
    # 01:00 EDT is 05:00Z; 02:00 EST is 07:00Z: both 01:00 hours, one span of two hours.
    assert list(night.open_spans(midnight, next_midnight)) == [
        (utc(2026, 11, 1, 5), utc(2026, 11, 1, 7))
    ]

    office = calendar("America/New_York", week=week("09:00-17:00", days=ALL_DAYS))
    assert office.between(midnight, next_midnight) == 8 * H
    # Saturday 16:00 EDT (20:00Z) + 1 h to 21:00Z; Sunday 09:00 EST is 14:00Z, + 1 h.
    assert office.add(datetime(2026, 10, 31, 16, tzinfo=NEW_YORK), 2 * H) == utc(2026, 11, 1, 15)


MOSCOW_OFFICE: dict[str, Any] = {"week": week("09:00-18:00"), "holidays": {"country": "RU"}}


def test_a_target_started_before_the_russian_new_year_holidays_lands_after_them() -> None:
    moscow = calendar("Europe/Moscow", **MOSCOW_OFFICE)
    # 2025-12-31 (a Wednesday) is a day off; 2026-01-01..09 are holidays, 10-11 a weekend:
    # the first working hour is Monday 2026-01-12 09:00 MSK (06:00Z); 4 h later is 10:00Z.
    assert moscow.add(datetime(2025, 12, 31, 16, tzinfo=MOSCOW), 4 * H) == utc(2026, 1, 12, 10)
    # Tuesday 2025-12-30 17:00-18:00 and Monday 2026-01-12 09:00-10:00.
    assert (
        moscow.between(
            datetime(2025, 12, 30, 17, tzinfo=MOSCOW), datetime(2026, 1, 12, 10, tzinfo=MOSCOW)
        )
        == 2 * H
    )


def test_russias_working_saturday_has_the_default_hours() -> None:
    moscow = calendar(
        "Europe/Moscow",
        week=week("09:00-13:00", "14:00-18:00") | {"sat": [], "tue": hours("10:00-12:00")},
        holidays={"country": "RU"},
    )
    # Saturday 2025-11-01 is worked (Monday 11-03 is the day off instead, 11-04 a holiday):
    # Friday 17:00-18:00, then Saturday from 09:00 MSK (06:00Z) for an hour.
    assert moscow.add(datetime(2025, 10, 31, 17, tzinfo=MOSCOW), 2 * H) == utc(2025, 11, 1, 7)
    # Saturday has Monday's hours (8 h with lunch); Monday and Tuesday are closed.
    assert (
        moscow.between(datetime(2025, 11, 1, tzinfo=MOSCOW), datetime(2025, 11, 5, tzinfo=MOSCOW))
        == 8 * H
    )
    closed = calendar("Europe/Moscow", **MOSCOW_OFFICE, closed_dates=["2025-11-01"])
    assert closed.add(datetime(2025, 10, 31, 17, tzinfo=MOSCOW), 2 * H) == utc(2025, 11, 5, 7)


def test_an_interval_ending_at_midnight_joins_one_starting_at_midnight() -> None:
    nights = calendar(week={"mon": hours("20:00-24:00"), "tue": hours("00:00-04:00")})
    monday = utc(2026, 3, 2)
    assert list(nights.open_spans(monday, monday + 3 * 24 * H)) == [
        (utc(2026, 3, 2, 20), utc(2026, 3, 3, 4))
    ]
    assert nights.add(utc(2026, 3, 2, 23), 2 * H) == utc(2026, 3, 3, 1)
    assert nights.is_open(utc(2026, 3, 3, 0))
    assert not nights.is_open(utc(2026, 3, 3, 4))


def test_a_target_of_exactly_the_remaining_hours_ends_at_the_close() -> None:
    office = calendar(week=week("09:00-18:00"))
    monday_10 = utc(2026, 3, 2, 10)
    assert office.add(monday_10, 8 * H) == utc(2026, 3, 2, 18)  # not Tuesday 09:00
    assert office.add(monday_10, 8 * H + timedelta(microseconds=1)) == datetime(
        2026, 3, 3, 9, 0, 0, 1, tzinfo=UTC
    )
    # Nothing to count: the deadline is the start itself, open or closed.
    assert office.add(utc(2026, 3, 2, 18), timedelta(0)) == utc(2026, 3, 2, 18)
    assert office.add(utc(2026, 3, 7, 12), timedelta(0)) == utc(2026, 3, 7, 12)


def test_lunch_breaks_do_not_count() -> None:
    office = calendar(week=week("09:00-13:00", "14:00-18:00"))
    assert office.add(utc(2026, 3, 2, 12), 2 * H) == utc(2026, 3, 2, 15)
    assert office.between(utc(2026, 3, 2, 12, 30), utc(2026, 3, 2, 14, 30)) == H
    assert list(office.open_spans(utc(2026, 3, 2, 12), utc(2026, 3, 2, 15))) == [
        (utc(2026, 3, 2, 12), utc(2026, 3, 2, 13)),
        (utc(2026, 3, 2, 14), utc(2026, 3, 2, 15)),
    ]


@pytest.mark.parametrize(
    ("subdivision", "deadline"),
    [
        # Six weeks from Monday 2026-03-02: Friday 2026-04-10 17:00 BST (UK summer time from
        # 03-29) is 16:00Z.
        (None, utc(2026, 4, 10, 16)),
        # England closes Good Friday 04-03 and Easter Monday 04-06: two days more, Tuesday 04-14.
        ("ENG", utc(2026, 4, 14, 16)),
        # Scotland has no Easter Monday holiday: one day more, Monday 04-13.
        ("SCT", utc(2026, 4, 13, 16)),
    ],
)
def test_a_thirty_business_day_target(subdivision: str | None, deadline: datetime) -> None:
    public = {"holidays": {"country": "GB", "subdivision": subdivision}} if subdivision else {}
    london = calendar("Europe/London", week=week("09:00-17:00"), **public)
    start = datetime(2026, 3, 2, 9, tzinfo=LONDON)
    assert london.add(start, 30 * 8 * H) == deadline
    assert london.between(start, deadline) == 30 * 8 * H


def test_closed_and_open_dates() -> None:
    office = calendar(
        week=week("09:00-17:00"),
        closed_dates=["2026-03-02"],
        open_dates=[
            {"date": "2026-03-07", "intervals": hours("10:00-12:00")},
            {"date": "2026-03-08"},  # the default hours: Monday's 09:00-17:00
        ],
    )
    # Friday 17:00 + 1 h: Monday is closed, so Tuesday 10:00.
    assert office.add(utc(2026, 2, 27, 17), H) == utc(2026, 3, 3, 10)
    assert office.between(utc(2026, 3, 7), utc(2026, 3, 9)) == 2 * H + 8 * H

    # An open date also opens a public holiday: 2026-01-05 is one of Russia's New Year days.
    moscow = calendar("Europe/Moscow", **MOSCOW_OFFICE, open_dates=[{"date": "2026-01-05"}])
    assert moscow.add(datetime(2025, 12, 31, 16, tzinfo=MOSCOW), 4 * H) == utc(2026, 1, 5, 10)


def test_24_7_is_plain_arithmetic() -> None:
    start = datetime(2026, 11, 1, 0, 30, tzinfo=NEW_YORK)
    end = datetime(2026, 11, 2, 12, 17, 3, 5, tzinfo=NEW_YORK)
    in_new_york = calendar("America/New_York", always_open=True)
    # Python adds to and subtracts aware datetimes of one zone on the wall clock; real elapsed
    # time is arithmetic in UTC (00:30 EDT + 90 min is 01:00 EST, not 02:00 EST).
    for always in (BusinessCalendar.always(), in_new_york):
        assert always.add(start, 90 * MINUTE) == start.astimezone(UTC) + 90 * MINUTE
        assert always.add(start, 90 * MINUTE) == utc(2026, 11, 1, 6)
        assert always.add(start, 40 * 24 * H) == start.astimezone(UTC) + 40 * 24 * H
        assert always.between(start, end) == end.astimezone(UTC) - start.astimezone(UTC)
        assert always.between(start, end) == end - start + H  # the wall clock misses an hour
        assert list(always.open_spans(start, end)) == [(start.astimezone(UTC), end.astimezone(UTC))]
        assert always.is_open(start)


def test_deadlines_are_exact_to_the_microsecond() -> None:
    office = calendar("Asia/Kathmandu", week=week("09:00-18:00"))  # +05:45
    before_close = datetime(2026, 3, 2, 17, 59, 59, 999_999, tzinfo=ZoneInfo("Asia/Kathmandu"))
    # 1 µs on Monday, 1 µs on Tuesday from 09:00 +05:45 (03:15Z).
    assert office.add(before_close, timedelta(microseconds=2)) == datetime(
        2026, 3, 3, 3, 15, 0, 1, tzinfo=UTC
    )
    assert office.between(before_close, utc(2026, 3, 3, 3, 16)) == timedelta(
        minutes=1, microseconds=1
    )


def test_refusals() -> None:
    office = calendar(week=week("09:00-17:00"))
    with pytest.raises(ValueError, match="naive"):
        office.add(datetime(2026, 3, 2, 9), H)
    with pytest.raises(ValueError, match="naive"):
        office.between(utc(2026, 3, 2), datetime(2026, 3, 3))
    with pytest.raises(ValueError, match="negative"):
        office.add(utc(2026, 3, 2), -H)
    with pytest.raises(ValueError, match="before the start"):
        office.between(utc(2026, 3, 3), utc(2026, 3, 2))
    with pytest.raises(ValueError, match="before the start"):
        office.open_spans(utc(2026, 3, 3), utc(2026, 3, 2))


def test_a_calendar_without_business_time_for_five_years_refuses_instead_of_looping() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(6 * 53)]
    never = calendar(week={"mon": hours("09:00-17:00")}, closed_dates=[str(d) for d in mondays])
    with pytest.raises(ValueError, match="no business time in five years"):
        never.add(utc(2026, 1, 1), H)
    assert never.between(utc(2026, 1, 1), utc(2031, 1, 1)) == timedelta(0)


# --- The brute-force reference -------------------------------------------------------------

ZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Moscow",  # summer time until 2011, moved back an hour in 2014
    "Australia/Lord_Howe",  # a 30-minute shift
    "Asia/Kathmandu",  # +05:45
    "UTC",
    "America/Sao_Paulo",  # summer time at midnight until 2019
)
YEARS = (2010, 2011, 2014, 2018, 2019, 2025, 2026)
COUNTRIES = (
    ("RU", None),
    ("CN", None),  # many transferred working days
    ("BY", None),
    ("US", "NY"),
    ("GB", "SCT"),
    ("BR", None),
    ("AU", "NSW"),
)
WINDOW_DAYS = 7
WINDOW = WINDOW_DAYS * 24 * 60  # minutes
MINUTE_US = 60_000_000

Day = tuple[tuple[int, int], ...]  # (start, end) minutes after local midnight


@dataclass(frozen=True)
class Reference:
    zone: str
    week: tuple[Day, ...]  # Monday first
    closed: frozenset[date]
    opened: dict[date, Day | None]
    country: tuple[str, str | None] | None

    def spec(self) -> dict[str, Any]:
        def day(intervals: Day) -> list[dict[str, str]]:
            return [{"start": clock(s), "end": clock(e)} for s, e in intervals]

        public = None
        if self.country is not None:
            country, subdivision = self.country
            public = {"country": country, "subdivision": subdivision}
        return {
            "name": "Reference",
            "timezone": self.zone,
            "week": {name: day(d) for name, d in zip(ALL_DAYS, self.week, strict=True)},
            "holidays": public,
            "closed_dates": [str(d) for d in self.closed],
            "open_dates": [
                {"date": str(d)} | ({} if i is None else {"intervals": day(i)})
                for d, i in self.opened.items()
            ],
        }

    def hours(self, local: date) -> Day:
        default = next(d for d in self.week if d)
        if local in self.closed:
            return ()
        if local in self.opened:
            return self.opened[local] or default
        if self.country:
            public = public_holidays(*self.country)
            if local in public:
                return ()
            if local in public.weekend_workdays:
                return default
        return self.week[local.weekday()]

    def open_minutes(self, start: datetime, minutes: int) -> list[bool]:
        """For each UTC minute from `start`: is its local wall time in its open date's hours?"""
        zone, by_date, flags = ZoneInfo(self.zone), dict[date, Day](), []
        first = int(start.timestamp())
        for second in range(first, first + minutes * 60, 60):
            local = datetime.fromtimestamp(second, zone)
            day = by_date.get(local.date())
            if day is None:
                day = by_date[local.date()] = self.hours(local.date())
            wall = local.hour * 60 + local.minute
            flags.append(any(s <= wall < e for s, e in day))
        return flags


@cache
def public_holidays(country: str, subdivision: str | None) -> HolidayBase:
    return country_holidays(country, subdiv=subdivision)


def clock(minutes: int) -> str:
    return f"{minutes // 60:02}:{minutes % 60:02}"


@cache
def transitions(zone: str, year: int) -> list[date]:
    """The days of `year` on which `zone` changes its UTC offset."""
    tz, first = ZoneInfo(zone), date(year, 1, 1)
    days = [first + timedelta(days=n) for n in range(367)]
    offsets = [datetime(d.year, d.month, d.day, 12, tzinfo=tz).utcoffset() for d in days]
    return [d for d, (a, b) in zip(days[1:], pairwise(offsets), strict=True) if a != b]


@st.composite
def days(draw: st.DrawFn) -> Day:
    """Up to ten intervals on quarter hours, touching or not, from 00:00 up to 24:00."""
    points = sorted(draw(st.sets(st.integers(0, 96), max_size=11)))
    return tuple((a * 15, b * 15) for a, b in pairwise(points) if draw(st.booleans()))


@cache
def special_days(country: tuple[str, str | None] | None, year: int) -> dict[str, list[date]]:
    """The public holidays of `year`, and its transferred working days."""
    if country is None:
        return {}
    public = public_holidays(*country)
    public.get(date(year, 1, 1))  # fills the year (and its weekend_workdays)
    return {
        "holiday": sorted(d for d in public if d.year == year),
        "working weekend day": sorted(d for d in public.weekend_workdays if d.year == year),
    }


@st.composite
def cases(draw: st.DrawFn) -> tuple[Reference, datetime]:
    """A calendar and a start, often in the week before an offset change or a special day."""
    zone, year = draw(st.sampled_from(ZONES)), draw(st.sampled_from(YEARS))
    country = draw(st.none() | st.sampled_from(COUNTRIES))
    special = {"offset change": transitions(zone, year)} | special_days(country, year)
    near = special.get(draw(st.sampled_from(["offset change", *special, "any day"])), [])
    if near:
        day = draw(st.sampled_from(near)) - timedelta(days=draw(st.integers(0, WINDOW_DAYS)))
    else:
        day = date(year, 1, 1) + timedelta(days=draw(st.integers(0, 364)))
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + draw(st.integers(0, 1439)) * MINUTE
    week = draw(st.lists(days(), min_size=7, max_size=7))
    if not any(week):
        week[0] = ((540, 1020),)
    nearby = [day + timedelta(days=n) for n in range(-1, WINDOW_DAYS + 2)]
    closed = draw(st.sets(st.sampled_from(nearby), max_size=3))
    opened = draw(
        st.dictionaries(
            st.sampled_from([d for d in nearby if d not in closed]),
            st.none() | days().map(lambda d: d or ((600, 960),)),
            max_size=3,
        )
    )
    return Reference(zone, tuple(week), frozenset(closed), opened, country), start


@settings(max_examples=150, deadline=None)
@given(cases(), st.data())
def test_the_calendar_agrees_with_a_minute_by_minute_reference(
    case: tuple[Reference, datetime], data: st.DataObject
) -> None:
    reference, start = case
    business = BusinessCalendar.from_spec(CalendarSpec.model_validate(reference.spec()))
    flags = reference.open_minutes(start, WINDOW)
    counted = [0, *accumulate(flags)]  # counted[k]: business minutes in the first k minutes
    at = [start + k * MINUTE for k in range(WINDOW + 1)]

    runs, closes, k = [], [], 0  # closes: the business minutes counted at each close
    for is_open, minutes in groupby(flags):
        n = len(list(minutes))
        if is_open:
            runs.append((at[k], at[k + n]))
            closes.append(counted[k + n])
        k += n
    assert list(business.open_spans(start, at[WINDOW])) == runs
    for k in data.draw(st.lists(st.integers(0, WINDOW - 1), max_size=5)):
        assert business.between(start, at[k]) == counted[k] * MINUTE
        assert business.is_open(at[k]) == flags[k]

    # add: whole minutes (the earliest minute at which the count reaches it), often exactly
    # what is left until a close, and microseconds.
    opens = [k for k, is_open in enumerate(flags) if is_open]
    whole = data.draw(st.integers(0, len(opens)) | st.sampled_from(closes or [0]))
    assert business.add(start, whole * MINUTE) == at[opens[whole - 1] + 1 if whole else 0]
    if opens:
        micros = data.draw(st.integers(1, len(opens) * MINUTE_US))
        minute, rest = divmod(micros, MINUTE_US)
        # the minute in which the last microsecond elapses: the end of one, or inside the next
        expected = at[opens[minute - 1] + 1] if rest == 0 else at[opens[minute]] + US * rest
        assert business.add(start, timedelta(microseconds=micros)) == expected
        # from an instant inside the first minute, whatever it counted is already spent
        inside = data.draw(st.integers(0, MINUTE_US - 1))
        late = start + timedelta(microseconds=inside)
        spent = inside if flags[0] else 0
        if micros > spent:
            assert business.add(late, timedelta(microseconds=micros - spent)) == expected
        assert business.between(late, at[WINDOW]) == counted[WINDOW] * MINUTE - US * spent


# --- Validation ----------------------------------------------------------------------------

VALID: dict[str, Any] = {
    "name": "Moscow office",
    "timezone": "Europe/Moscow",
    "week": week("09:00-18:00"),
}


def test_the_example_spec_is_valid() -> None:
    spec = CalendarSpec.model_validate(
        {
            "name": "Moscow office",
            "timezone": "Europe/Moscow",
            "always_open": False,
            "week": week("09:00-13:00", "14:00-18:00") | {"sat": [], "sun": []},
            "holidays": {"country": "RU", "subdivision": None},
            "closed_dates": ["2026-12-31"],
            "open_dates": [
                {"date": "2026-11-07", "intervals": hours("10:00-16:00")},
                {"date": "2026-11-14"},
            ],
        }
    )
    assert spec.week.mon[1].start == "14:00"
    CalendarSpec.model_validate(VALID | {"holidays": {"country": "GB", "subdivision": "England"}})
    # Touching intervals are fine, and the order they are written in does not matter.
    assert (
        CalendarSpec.model_validate(
            VALID | {"week": {"mon": hours("13:00-18:00", "09:00-13:00")}}
        ).week.mon
        == CalendarSpec.model_validate(
            VALID | {"week": {"mon": hours("09:00-13:00", "13:00-18:00")}}
        ).week.mon
    )


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"timezone": "Mars/Olympus"}, ("timezone",), "unknown time zone 'Mars/Olympus'"),
        ({"timezone": "europe/moscow"}, ("timezone",), "unknown time zone 'europe/moscow'"),
        ({"timezone": "../etc/passwd"}, ("timezone",), "unknown time zone"),
        (
            {"week": {"mon": hours("09:00-13:00", "12:00-18:00")}},
            ("week", "mon"),
            "intervals 09:00-13:00 and 12:00-18:00 overlap",
        ),
        (
            {"week": {"tue": hours("18:00-09:00")}},
            ("week", "tue", 0),
            "start 18:00 must be before end 09:00",
        ),
        (
            {"week": {"tue": hours("09:00-09:00")}},
            ("week", "tue", 0),
            "start 09:00 must be before end 09:00",
        ),
        (
            {"week": {"wed": hours("24:00-24:00")}},
            ("week", "wed", 0, "start"),
            "'24:00' can only end an interval",
        ),
        (
            {"week": {"thu": hours("09:00-25:00")}},
            ("week", "thu", 0, "end"),
            "'25:00' is not a time of day",
        ),
        (
            {"week": {"thu": hours("9:00-18:00")}},
            ("week", "thu", 0, "start"),
            "'9:00' is not a time of day",
        ),
        (
            {"week": {"fri": hours(*[f"{h:02}:00-{h:02}:30" for h in range(11)])}},
            ("week", "fri"),
            "at most 10 items",
        ),
        (
            {"week": {"monday": hours("09:00-18:00")}},
            ("week", "monday"),
            "Extra inputs are not permitted",
        ),
        ({"holidays": {"country": "XX"}}, ("holidays", "country"), "unknown country 'XX'"),
        (
            {"holidays": {"country": "US", "subdivision": "XX"}},
            ("holidays",),
            "unknown subdivision 'XX' of US",
        ),
        (
            {"closed_dates": ["2026-12-31"], "open_dates": [{"date": "2026-12-31"}]},
            (),
            "2026-12-31 cannot be both in closed_dates and open_dates",
        ),
        (
            {"open_dates": [{"date": "2026-11-07"}, {"date": "2026-11-07"}]},
            (),
            "open_dates lists 2026-11-07 more than once",
        ),
        (
            {"open_dates": [{"date": "2026-11-07", "intervals": []}]},
            ("open_dates", 0, "intervals"),
            "an open date needs at least one interval",
        ),
        ({"always_open": True}, (), "an always_open calendar is open 24/7: its week must be empty"),
        (
            {"always_open": True, "week": {}, "closed_dates": ["2026-12-31"]},
            (),
            "an always_open calendar has no holidays, closed_dates or open_dates",
        ),
        ({"week": {"sat": []}}, (), "the week has no hours"),
        ({"colour": "blue"}, ("colour",), "Extra inputs are not permitted"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(
    change: dict[str, Any], where: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        CalendarSpec.model_validate(VALID | change)
    [error] = refused.value.errors()
    assert error["loc"] == where
    assert message in error["msg"]
