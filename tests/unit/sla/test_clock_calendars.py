"""Worked cases of clocks that count business hours: a pause across midnight, a DST change,
the Russian New Year holidays, and a priority change that re-targets. Every figure is
written out by hand from the calendar's hours."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    Event,
    EventEnvelope,
    PolicyRef,
    Priority,
    Requester,
    ResponseSent,
    SlaAchieved,
    SlaClockResumed,
    SlaClockRetargeted,
    SlaClockStarted,
    SlaMetric,
    TicketOpened,
    TicketPriorityChanged,
    TicketStatus,
    TicketStatusChanged,
    TicketType,
)
from sla.domain.calendar import BusinessCalendar, CalendarSpec
from sla.domain.clocks import BusinessTime, Emitted, apply, open_ticket
from sla.domain.policies import Policy, PolicySpec, TicketFacts

AGENT = Actor(kind=ActorKind.AGENT, id="a-1")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def calendar(zone: str, hours: str, country: str | None = None) -> BusinessCalendar:
    start, end = hours.split("-")
    spec: dict[str, Any] = {
        "name": zone, "timezone": zone,
        "week": {d: [{"start": start, "end": end}] for d in WEEKDAYS},
    }  # fmt: skip
    if country:
        spec["holidays"] = {"country": country}
    return BusinessCalendar.from_spec(CalendarSpec.model_validate(spec))


class OneCalendar:
    """Rules with one business-hours policy over one calendar."""

    def __init__(self, cal: BusinessCalendar, targets: dict[str, Any], **spec: Any) -> None:
        self.cal = cal
        self.policy = Policy("office", 1, PolicySpec.model_validate(
            {"name": "Office", "calendar_id": "office", "targets": targets, **spec}))  # fmt: skip

    def select(self, tenant_id: str, ticket: TicketFacts) -> tuple[Policy, int | None]:
        return self.policy, 1

    def calendar(self, tenant_id: str, policy: PolicyRef) -> BusinessTime:
        assert policy.business_hours
        return self.cal


class Ticket:
    def __init__(self, rules: OneCalendar, at: datetime, priority: Priority = Priority.NORMAL):
        self.rules, self.id, self.version = rules, uuid4(), 1
        opened = TicketOpened(
            number=1, subject="Invoice", description="", requester=Requester(customer_id="c"),
            priority=priority, channel=Channel.EMAIL, type=TicketType.QUESTION, opened_by=AGENT,
        )  # fmt: skip
        self.state, self.last = open_ticket(self._envelope(opened, at), rules)

    def _envelope(self, payload: Event, at: datetime) -> EventEnvelope[Any]:
        return EventEnvelope.new(payload, tenant_id="acme", producer="ticketing",
                                 aggregate_id=self.id, aggregate_version=self.version,
                                 occurred_at=at)  # fmt: skip

    def at(self, at: datetime, payload: Event) -> list[Emitted]:
        self.version += 1
        self.last = apply(self.state, self._envelope(payload, at), self.rules)
        return self.last


def moscow(day: int, hour: int, minute: int = 0, month: int = 3, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour - 3, minute, tzinfo=UTC)  # MSK is UTC+3 all year


def business(minutes: int) -> dict[str, Any]:
    return {"minutes": minutes, "business_hours": True}


def test_a_pause_across_midnight_counts_no_business_time() -> None:
    rules = OneCalendar(calendar("Europe/Moscow", "09:00-18:00"),
                        {"any": {"first_response": business(240)}})  # fmt: skip
    # Monday 2 March 2026, 16:00: 4 business hours are due on Tuesday at 11:00.
    ticket = Ticket(rules, moscow(2, 16))
    (started,) = ticket.last
    assert isinstance(started.payload, SlaClockStarted)
    assert started.payload.deadline == moscow(3, 11)
    ticket.at(
        moscow(2, 17),
        TicketStatusChanged(
            previous=TicketStatus.NEW, status=TicketStatus.PENDING, changed_by=AGENT
        ),
    )
    # Back on Tuesday at 10:00: 1 hour used on Monday, 3 left, so due at 13:00.
    (resumed,) = ticket.at(moscow(3, 10), TicketStatusChanged(
        previous=TicketStatus.PENDING, status=TicketStatus.OPEN, changed_by=AGENT))  # fmt: skip
    assert isinstance(resumed.payload, SlaClockResumed)
    assert resumed.payload.deadline == moscow(3, 13)
    (achieved,) = ticket.at(moscow(3, 12, 30), ResponseSent(
        message_id=uuid4(), agent_id="a-1", body="Done", channel=Channel.EMAIL))  # fmt: skip
    assert isinstance(achieved.payload, SlaAchieved)
    assert achieved.payload.elapsed_seconds == 3.5 * 3600  # 1 h Monday, 2.5 h Tuesday
    (pause,) = ticket.state.clocks[0].pauses
    assert (pause.paused_at, pause.resumed_at) == (moscow(2, 17), moscow(3, 10))


def test_business_hours_across_the_start_of_daylight_saving_time() -> None:
    rules = OneCalendar(calendar("America/New_York", "09:00-17:00"),
                        {"any": {"resolution": business(16 * 60)}})  # fmt: skip
    # Friday 6 March 2026, 15:00 EST (20:00 UTC); clocks go forward on Sunday 8 March.
    ticket = Ticket(rules, datetime(2026, 3, 6, 20, tzinfo=UTC))
    (started,) = ticket.last
    assert isinstance(started.payload, SlaClockStarted)
    # 2 h on Friday, 8 h on Monday, 6 h on Tuesday: Tuesday 15:00 EDT, which is 19:00 UTC.
    assert started.payload.deadline == datetime(2026, 3, 10, 19, tzinfo=UTC)


def test_the_new_year_holidays_are_not_business_time() -> None:
    rules = OneCalendar(calendar("Europe/Moscow", "09:00-18:00", "RU"),
                        {"any": {"first_response": business(240)}})  # fmt: skip
    # Tuesday 30 December 2025, 16:00: 2 hours that day; 31 December and 1-9 January are
    # days off, 10-11 January a weekend: the other 2 hours on Monday 12 January, 09:00-11:00.
    ticket = Ticket(rules, moscow(30, 16, month=12, year=2025))
    (started,) = ticket.last
    assert isinstance(started.payload, SlaClockStarted)
    assert started.payload.deadline == moscow(12, 11, month=1, year=2026)


def test_a_priority_change_retargets_in_business_time() -> None:
    rules = OneCalendar(calendar("Europe/Moscow", "09:00-18:00"), {
        "any": {"first_response": business(8 * 60)}, "urgent": {"first_response": business(120)},
    })  # fmt: skip
    ticket = Ticket(rules, moscow(2, 17))  # Monday 17:00: 8 business hours, Tuesday 16:00
    assert ticket.state.clocks[0].deadline == moscow(3, 16)
    # Urgent on Tuesday at 09:30: 1.5 h elapsed (17-18 Monday, 9-9:30 Tuesday), 0.5 h left.
    (retargeted,) = ticket.at(moscow(3, 9, 30), TicketPriorityChanged(
        previous=Priority.NORMAL, priority=Priority.URGENT, changed_by=AGENT))  # fmt: skip
    assert isinstance(retargeted.payload, SlaClockRetargeted)
    assert retargeted.payload.elapsed_seconds == 1.5 * 3600
    assert retargeted.payload.deadline == moscow(3, 10)
    assert retargeted.payload.metric is SlaMetric.FIRST_RESPONSE
    assert ticket.state.clocks[0].deadline - moscow(3, 9, 30) == timedelta(minutes=30)
