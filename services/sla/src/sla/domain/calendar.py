"""Business calendars: when a tenant's support is at work, and business-time arithmetic.

Admins write a `CalendarSpec` (JSON): a time zone, weekly hours, optionally a country's public
holidays, custom closed dates and custom working dates. `BusinessCalendar.from_spec` turns it
into arithmetic: `add` (a deadline), `between` (business time elapsed) and `open_spans`.

What counts as business time, exactly: an instant is business time when the wall clock of the
calendar's time zone at that instant shows a time inside one of the intervals of that local
date, and that local date is open. Intervals are [start, end) in local wall-clock time, so on a
change of UTC offset an interval 00:00-24:00 lasts 23 or 25 real hours; a wall time inside a
spring-forward gap never occurs (an interval inside the gap counts nothing); during a fall-back
the repeated wall times occur twice and count both times. An always-open (24/7) calendar
counts every instant. An overnight shift is written as two intervals on two days, 22:00-24:00
and 00:00-06:00 the next day; they join into one continuous span.

Which hours a local date has, first rule that applies:
1. a date in `closed_dates` is closed;
2. a date in `open_dates` has its own intervals, or without them the default hours;
3. a public holiday of the country is closed;
4. a transferred working day of the country (e.g. Russia's working Saturday 2025-11-01) has
   the default hours;
5. otherwise the weekly hours of its weekday.
The default hours are those of the first weekday, Monday to Sunday, that has any.

Computing: a calendar splits UTC time into UTC days and computes each day's business spans once
(cached), in integer microseconds since the epoch, so arithmetic is exact to the microsecond
and a deadline a few days ahead costs a few cache lookups.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays import HolidayBase, country_holidays, list_supported_countries
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_INTERVALS_PER_DAY = 10

_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")
_MIDNIGHT_END = "24:00"


def _minutes(text: str) -> int:
    return int(text[:2]) * 60 + int(text[3:])


class Interval(BaseModel):
    """Working hours [start, end) of one day in local wall-clock time "HH:MM".

    "24:00" may only end an interval (the midnight that ends the day); a shift past midnight
    is two intervals, one ending at 24:00 and one starting at 00:00 the next day.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str
    end: str

    @field_validator("start")
    @classmethod
    def _a_start_time(cls, value: str) -> str:
        if value == _MIDNIGHT_END:
            raise ValueError("'24:00' can only end an interval; a day starts at '00:00'")
        if not _TIME.fullmatch(value):
            raise ValueError(f"{value!r} is not a time of day HH:MM from 00:00 to 23:59")
        return value

    @field_validator("end")
    @classmethod
    def _an_end_time(cls, value: str) -> str:
        if value != _MIDNIGHT_END and not _TIME.fullmatch(value):
            raise ValueError(f"{value!r} is not a time of day HH:MM from 00:00 to 24:00")
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        if self.start_minute >= self.end_minute:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self

    @property
    def start_minute(self) -> int:
        return _minutes(self.start)

    @property
    def end_minute(self) -> int:
        return _minutes(self.end)


def _without_overlaps(intervals: tuple[Interval, ...]) -> tuple[Interval, ...]:
    ordered = tuple(sorted(intervals, key=lambda i: i.start_minute))
    for before, after in pairwise(ordered):
        if after.start_minute < before.end_minute:
            raise ValueError(
                f"intervals {before.start}-{before.end} and {after.start}-{after.end} overlap"
            )
    return ordered


DayHours = Annotated[
    tuple[Interval, ...],
    Field(max_length=MAX_INTERVALS_PER_DAY),
    AfterValidator(_without_overlaps),
]
"""One day's intervals, sorted; they may touch (09:00-13:00, 13:00-18:00) but not overlap."""


class Week(BaseModel):
    """Weekly hours; a day left out is closed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mon: DayHours = ()
    tue: DayHours = ()
    wed: DayHours = ()
    thu: DayHours = ()
    fri: DayHours = ()
    sat: DayHours = ()
    sun: DayHours = ()

    def days(self) -> tuple[tuple[Interval, ...], ...]:
        """The seven days' intervals, Monday first (as `date.weekday()` counts)."""
        return (self.mon, self.tue, self.wed, self.thu, self.fri, self.sat, self.sun)


class OpenDate(BaseModel):
    """A custom working day; without intervals it gets the calendar's default hours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: date
    intervals: DayHours | None = None

    @field_validator("intervals")
    @classmethod
    def _some_hours(cls, value: tuple[Interval, ...] | None) -> tuple[Interval, ...] | None:
        if value == ():
            raise ValueError(
                "an open date needs at least one interval; leave intervals out for the "
                "default hours, or put the date in closed_dates to close it"
            )
        return value


@cache
def _supported_countries() -> Mapping[str, list[str]]:
    return list_supported_countries()


class PublicHolidays(BaseModel):
    """A country's public holidays (and transferred working days), from `holidays`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str
    subdivision: str | None = None

    @field_validator("country")
    @classmethod
    def _a_supported_country(cls, value: str) -> str:
        if value not in _supported_countries():
            raise ValueError(
                f"unknown country {value!r}: use an ISO 3166-1 code such as 'RU' or 'US' "
                "that the holidays library supports"
            )
        return value

    @model_validator(mode="after")
    def _a_subdivision_of_the_country(self) -> Self:
        if self.subdivision is not None:
            try:  # the library also knows aliases of subdivisions (e.g. 'England' for 'ENG')
                country_holidays(self.country, subdiv=self.subdivision)
            except NotImplementedError:
                codes = ", ".join(_supported_countries()[self.country]) or "none"
                raise ValueError(
                    f"unknown subdivision {self.subdivision!r} of {self.country} "
                    f"(its subdivisions: {codes})"
                ) from None
        return self

    def build(self) -> HolidayBase:
        """The library's holidays, filled a year at a time as dates of that year are asked."""
        return country_holidays(self.country, subdiv=self.subdivision)


class CalendarSpec(BaseModel):
    """A business calendar as admins write it (see the module docstring for the rules)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    timezone: str
    always_open: bool = False
    week: Week = Field(default_factory=Week)
    holidays: PublicHolidays | None = None
    closed_dates: tuple[date, ...] = ()
    open_dates: tuple[OpenDate, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _a_known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as 'Europe/Moscow'"
            ) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        has_hours = any(self.week.days())
        if self.always_open:
            if has_hours:
                raise ValueError("an always_open calendar is open 24/7: its week must be empty")
            if self.holidays or self.closed_dates or self.open_dates:
                # 24/7 counts every instant; "24/7 but holidays" is a week of 00:00-24:00 days
                raise ValueError(
                    "an always_open calendar has no holidays, closed_dates or open_dates; "
                    "for 24/7 except holidays give every day of the week 00:00-24:00"
                )
            return self
        if not has_hours:
            raise ValueError("the week has no hours: give at least one interval, or always_open")
        opened = [o.date for o in self.open_dates]
        if twice := sorted({d for d in opened if opened.count(d) > 1}):
            raise ValueError(f"open_dates lists {', '.join(map(str, twice))} more than once")
        if both := sorted(set(opened) & set(self.closed_dates)):
            raise ValueError(
                f"{', '.join(map(str, both))} cannot be both in closed_dates and open_dates"
            )
        return self


Hours = tuple[tuple[int, int], ...]
"""A day's intervals as (start, end) minutes after local midnight, sorted."""
Span = tuple[int, int]
"""[start, end) in microseconds since the epoch (UTC)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_US = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_DAY_S = 86_400
_DAY_US = _DAY_S * 1_000_000
_PROBE_S = 3_600  # offset samples an hour apart; tzdata's closest transitions are days apart
_IDLE_DAYS = 5 * 366  # "no business time in five years": a calendar that would never end


def _hours(intervals: Iterable[Interval]) -> Hours:
    return tuple((i.start_minute, i.end_minute) for i in intervals)


def _default_hours(week: Iterable[Hours]) -> Hours:
    """The hours of the first weekday, Monday to Sunday, that has any."""
    return next((hours for hours in week if hours), ())


@dataclass(frozen=True, eq=False)
class BusinessCalendar:
    """Business-time arithmetic of one calendar; build it with `from_spec` or `always`.

    Immutable; it caches each UTC day's business spans, so keep one per calendar version.
    """

    zone: ZoneInfo
    always_open: bool = False
    week: tuple[Hours, ...] = ((),) * 7
    """Monday first."""
    closed_dates: frozenset[date] = frozenset()
    open_dates: Mapping[date, Hours] = field(default_factory=lambda: MappingProxyType({}))
    public_holidays: HolidayBase | None = None
    _spans_of_day: Callable[[int], tuple[Span, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spans_of_day", lru_cache(maxsize=1024)(self._utc_day))

    @classmethod
    def from_spec(cls, spec: CalendarSpec) -> Self:
        """The calendar of a validated spec (its holidays object is built here, once)."""
        zone = ZoneInfo(spec.timezone)
        if spec.always_open:
            return cls(zone, always_open=True)
        week = tuple(_hours(day) for day in spec.week.days())
        default = _default_hours(week)
        return cls(
            zone,
            week=week,
            closed_dates=frozenset(spec.closed_dates),
            open_dates=MappingProxyType(
                {
                    o.date: default if o.intervals is None else _hours(o.intervals)
                    for o in spec.open_dates
                }
            ),
            public_holidays=spec.holidays.build() if spec.holidays else None,
        )

    @classmethod
    def always(cls) -> Self:
        """24/7 in UTC: business time is plain elapsed time (for calendar-time targets)."""
        return cls(ZoneInfo("UTC"), always_open=True)

    def add(self, start: datetime, business: timedelta) -> datetime:
        """The instant (UTC) at which `business` of business time has elapsed since `start`.

        The earliest such instant: a target that ends exactly at the close of an interval is
        that close (18:00), not the next opening. ValueError for a negative duration or when
        the calendar has no business time for five years on end.
        """
        at = _micros(start)
        left = business // _US
        if left < 0:
            raise ValueError(f"a business duration cannot be negative, got {business}")
        if left == 0 or self.always_open:
            return _instant(at + left)
        for begin, end in self._spans(at, None):
            if left <= end - begin:
                return _instant(begin + left)
            left -= end - begin
        raise AssertionError("unreachable: an endless walk ends by returning or raising")

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time in [a, b); ValueError if b is before a."""
        start, end = _micros(a), _micros(b)
        if end < start:
            raise ValueError(f"the end {b.isoformat()} is before the start {a.isoformat()}")
        if self.always_open:  # (not b - a: within one zone Python subtracts wall times)
            return timedelta(microseconds=end - start)
        return timedelta(microseconds=sum(e - s for s, e in self._spans(start, end)))

    def open_spans(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The business time within [start, end) as maximal UTC spans, in order."""
        first, last = _micros(start), _micros(end)
        if last < first:
            raise ValueError(f"the end {end.isoformat()} is before the start {start.isoformat()}")
        return ((_instant(s), _instant(e)) for s, e in _joined(self._spans(first, last)))

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` is business time."""
        at = _micros(moment)
        return any(s <= at < e for s, e in self._spans_of_day(at // _DAY_US))

    def hours_on(self, day: date) -> Hours:
        """The intervals of a local date, () when it is closed (rules in the module docstring)."""
        if day in self.closed_dates:
            return ()
        if (own := self.open_dates.get(day)) is not None:
            return own
        if self.public_holidays is not None:
            if day in self.public_holidays:  # asking fills the library's year first, which
                return ()  # `weekend_workdays` needs too
            if day in self.public_holidays.weekend_workdays:
                return _default_hours(self.week)
        return self.week[day.weekday()]

    def _spans(self, start: int, end: int | None) -> Iterator[Span]:
        """Business spans within [start, end) in order, split at UTC midnights.

        Without an end the walk raises ValueError after five years without business time.
        """
        day, idle = start // _DAY_US, 0
        while end is None or day * _DAY_US < end:
            spans = self._spans_of_day(day)
            idle = 0 if spans else idle + 1
            if end is None and idle > _IDLE_DAYS:
                raise ValueError("the calendar has no business time in five years")
            for s, e in spans:
                s, e = max(s, start), e if end is None else min(e, end)
                if s < e:
                    yield s, e
            day += 1

    def _utc_day(self, day: int) -> tuple[Span, ...]:
        """The business spans of UTC day number `day` (days since 1970-01-01), merged."""
        lo = day * _DAY_S
        if self.always_open:
            return ((lo * 1_000_000, (lo + _DAY_S) * 1_000_000),)
        spans: list[tuple[int, int]] = []
        for begin, end, offset in self._offset_pieces(lo, lo + _DAY_S):
            # Within a piece of constant offset the wall clock runs from begin + offset to
            # end + offset; intersect that with each local date's intervals in wall time.
            wall_begin, wall_end = begin + offset, end + offset
            for local_day in range(wall_begin // _DAY_S, (wall_end - 1) // _DAY_S + 1):
                midnight = local_day * _DAY_S
                for first, last in self.hours_on(date.fromordinal(_EPOCH_ORDINAL + local_day)):
                    s = max(midnight + first * 60, wall_begin)
                    e = min(midnight + last * 60, wall_end)
                    if s < e:
                        spans.append((s - offset, e - offset))
        return tuple((s * 1_000_000, e * 1_000_000) for s, e in _joined(sorted(spans)))

    def _offset_pieces(self, lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
        """Split the UTC seconds [lo, hi) into (begin, end, UTC offset) pieces of one offset.

        The offset is sampled every hour and a change is bisected to its exact second (time
        zone transitions fall on whole seconds).
        """
        begin, offset = lo, self._offset_at(lo)
        probe = lo
        while probe < hi - 1:
            ahead = min(probe + _PROBE_S, hi - 1)
            if self._offset_at(ahead) == offset:
                probe = ahead
                continue
            before, after = probe, ahead  # the offset is still `offset` at before, not at after
            while after - before > 1:
                middle = (before + after) // 2
                if self._offset_at(middle) == offset:
                    before = middle
                else:
                    after = middle
            yield begin, after, offset
            begin, offset, probe = after, self._offset_at(after), after
        yield begin, hi, offset

    def _offset_at(self, second: int) -> int:
        offset = datetime.fromtimestamp(second, self.zone).utcoffset()
        assert offset is not None  # a ZoneInfo always has one
        return offset // _SECOND


def _joined(spans: Iterable[Span]) -> Iterator[Span]:
    """Sorted spans with touching ones joined (22:00-24:00 and 00:00-06:00 make one)."""
    current: Span | None = None
    for s, e in spans:
        if current is not None and s <= current[1]:
            current = (current[0], max(current[1], e))
            continue
        if current is not None:
            yield current
        current = (s, e)
    if current is not None:
        yield current


def _micros(moment: datetime) -> int:
    if moment.utcoffset() is None:
        raise ValueError(f"a naive datetime has no instant: {moment.isoformat()} needs a tzinfo")
    return (moment - _EPOCH) // _US


def _instant(micros: int) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise ValueError("the instant falls after the year 9999") from None
