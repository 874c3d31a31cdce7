"""The clock rules, worked case by case in calendar time (24/7), so every figure can be
checked by hand; business calendars are exercised in test_calendar and test_clock_calendars."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    CustomerReplied,
    Event,
    EventEnvelope,
    Organisation,
    PolicyRef,
    Priority,
    Requester,
    ResponseSent,
    RetargetRule,
    SlaAchieved,
    SlaBreached,
    SlaClockCancelled,
    SlaClockResumed,
    SlaClockRetargeted,
    SlaClockStarted,
    SlaClockStopped,
    SlaMetric,
    SlaVerdictRevised,
    SlaWarning,
    TicketAssigned,
    TicketClosed,
    TicketMerged,
    TicketOpened,
    TicketOrganisationChanged,
    TicketPriorityChanged,
    TicketReopened,
    TicketSolved,
    TicketStatus,
    TicketStatusChanged,
    TicketType,
)
from sla.domain.clocks import (
    BusinessTime,
    ClockState,
    Emitted,
    alarm,
    apply,
    next_alarm,
    open_ticket,
)
from sla.domain.policies import DEFAULT_POLICY, Policy, PolicySpec, Target, TicketFacts, select

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")
CUSTOMER = Actor(kind=ActorKind.CUSTOMER, id="c-1")


class AllHours:
    def add(self, start: datetime, business: timedelta) -> datetime:
        return start + business

    def between(self, a: datetime, b: datetime) -> timedelta:
        assert b >= a
        return b - a


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def policy(
    pid: str = "standard",
    *,
    version: int = 1,
    first: int = 240,
    resolution: int | None = 24 * 60,
    next_response: int | None = 120,
    periodic: int | None = None,
    urgent_first: int = 60,
    retarget: RetargetRule = RetargetRule.KEEP_ELAPSED,
    **spec: Any,
) -> Policy:
    def targets(first_minutes: int) -> dict[SlaMetric, Target]:
        chosen = {
            SlaMetric.FIRST_RESPONSE: first_minutes,
            SlaMetric.RESOLUTION: resolution,
            SlaMetric.NEXT_RESPONSE: next_response,
            SlaMetric.PERIODIC_UPDATE: periodic,
        }
        return {m: Target(minutes=v) for m, v in chosen.items() if v is not None}

    return Policy(
        pid,
        version,
        PolicySpec(
            name=pid,
            targets={"any": targets(first), Priority.URGENT: targets(urgent_first)},
            retarget=retarget,
            **spec,
        ),
    )


class Rules:
    def __init__(self, *policies: Policy) -> None:
        self.policies = list(policies)

    def select(self, tenant_id: str, ticket: TicketFacts) -> tuple[Policy, int | None]:
        return select(self.policies, ticket), None

    def calendar(self, tenant_id: str, policy: PolicyRef) -> BusinessTime:
        return AllHours()


class Ticket:
    """A ticket's events as ticketing would publish them, applied as they come."""

    def __init__(self, rules: Rules, priority: Priority = Priority.NORMAL, **opened: Any) -> None:
        self.rules = rules
        self.id = uuid4()
        self.version = 1
        payload = TicketOpened(
            number=42, subject="Refund", description="", opened_by=AGENT,
            requester=Requester(customer_id="c-1"), priority=priority, channel=Channel.EMAIL,
            type=TicketType.QUESTION, **opened,
        )  # fmt: skip
        self.state, self.last = open_ticket(self._envelope(payload, T0), rules)

    def _envelope(self, payload: Event, at: datetime) -> EventEnvelope[Any]:
        return EventEnvelope.new(
            payload, tenant_id="acme", producer="ticketing", aggregate_id=self.id,
            aggregate_version=self.version, occurred_at=at,
        )  # fmt: skip

    def at(self, offset: timedelta, payload: Event) -> list[Emitted]:
        self.version += 1
        self.last = apply(self.state, self._envelope(payload, T0 + offset), self.rules)
        return self.last

    def alarm(self, offset: timedelta, horizon: timedelta | None = None) -> list[Emitted]:
        now = T0 + offset
        self.last = alarm(self.state, self.rules, now, T0 + (horizon or offset))
        return self.last

    def clock(self, metric: SlaMetric, cycle: int = 1) -> Any:
        return next(c for c in self.state.clocks if c.metric is metric and c.cycle == cycle)


def kinds(emitted: list[Emitted]) -> list[tuple[str, str]]:
    return [(e.payload.event_type, e.payload.metric.value) for e in emitted]


def reply() -> ResponseSent:
    return ResponseSent(message_id=uuid4(), agent_id="agent-7", body="On it", channel=Channel.EMAIL)


def customer() -> CustomerReplied:
    return CustomerReplied(message_id=uuid4(), customer_id="c-1", body="?", channel=Channel.EMAIL)


def status(previous: TicketStatus, new: TicketStatus) -> TicketStatusChanged:
    return TicketStatusChanged(previous=previous, status=new, changed_by=AGENT)


def test_a_ticket_without_policies_gets_an_answer_within_24_hours() -> None:
    ticket = Ticket(Rules())
    (started,) = ticket.last
    assert isinstance(started.payload, SlaClockStarted)
    assert started.payload.metric is SlaMetric.FIRST_RESPONSE
    assert started.payload.deadline == T0 + hours(24)
    assert started.payload.policy.policy_id == DEFAULT_POLICY.id
    assert started.occurred_at == T0


def test_first_response_in_time_is_achieved_with_its_elapsed_time() -> None:
    ticket = Ticket(Rules(policy()))
    assert kinds(ticket.last) == [("SlaClockStarted", "first_response"),
                                  ("SlaClockStarted", "resolution")]  # fmt: skip
    emitted = ticket.at(hours(3), reply())
    achieved = emitted[0].payload
    assert isinstance(achieved, SlaAchieved)
    assert achieved.elapsed_seconds == 3 * 3600
    assert achieved.deadline == T0 + hours(4)
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).state is ClockState.ACHIEVED


def test_a_reply_processed_after_the_deadline_but_sent_before_it_is_in_time() -> None:
    ticket = Ticket(Rules(policy()))
    # The timer fired late and nothing held it back: the breach was announced...
    assert kinds(ticket.alarm(hours(4), horizon=hours(4))) == [("SlaBreached", "first_response")]
    # ...then the reply, sent at 3h59 but delayed in a lagging pipeline, arrives.
    emitted = ticket.at(hours(3) + timedelta(minutes=59), reply())
    revised = emitted[0].payload
    assert isinstance(revised, SlaVerdictRevised)
    assert (revised.previous, revised.verdict) == ("breached", "achieved")
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).state is ClockState.ACHIEVED


def test_a_late_reply_shows_the_breach_even_if_no_timer_fired() -> None:
    ticket = Ticket(Rules(policy()))
    emitted = ticket.at(hours(5), reply())
    assert kinds(emitted)[:2] == [("SlaBreached", "first_response"),
                                  ("SlaClockStopped", "first_response")]  # fmt: skip
    breached, stopped = emitted[0], emitted[1]
    assert breached.occurred_at == T0 + hours(4)  # event time: the deadline
    assert breached.caused_by is None
    assert isinstance(stopped.payload, SlaClockStopped)
    assert stopped.payload.elapsed_seconds == 5 * 3600
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).state is ClockState.STOPPED


def test_no_breach_while_the_horizon_is_before_the_deadline() -> None:
    ticket = Ticket(Rules(policy()))
    assert kinds(ticket.alarm(hours(4), horizon=hours(3))) == [
        ("SlaWarning", "first_response"), ("SlaWarning", "first_response")
    ]  # fmt: skip
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).breached_at is None
    assert kinds(ticket.alarm(hours(4), horizon=hours(4))) == [("SlaBreached", "first_response")]
    assert ticket.alarm(hours(5)) == []  # once


def test_warnings_fire_once_each_at_their_fractions() -> None:
    ticket = Ticket(Rules(policy(resolution=None)))
    first = ticket.clock(SlaMetric.FIRST_RESPONSE)
    assert next_alarm(first, AllHours()) == T0 + hours(3)  # 75 % of 4 h
    assert ticket.alarm(hours(2)) == []
    (warning,) = ticket.alarm(hours(3))
    assert isinstance(warning.payload, SlaWarning)
    assert warning.payload.threshold == 0.75
    assert ticket.alarm(hours(3.1)) == []
    assert next_alarm(first, AllHours()) == T0 + hours(3.6)
    assert [e.payload.threshold for e in ticket.alarm(hours(3.6))] == [0.9]  # type: ignore[attr-defined]
    assert next_alarm(first, AllHours()) is None  # the breach waits for a watermark


def test_pending_pauses_and_the_ledger_proves_it() -> None:
    ticket = Ticket(Rules(policy()))
    emitted = ticket.at(hours(1), status(TicketStatus.NEW, TicketStatus.PENDING))
    assert kinds(emitted) == [("SlaClockPaused", "first_response"),
                              ("SlaClockPaused", "resolution")]  # fmt: skip
    paused_by = ticket.state.version
    assert ticket.alarm(hours(10)) == []  # paused clocks neither warn nor breach
    emitted = ticket.at(hours(10), status(TicketStatus.PENDING, TicketStatus.OPEN))
    resumed = emitted[0].payload
    assert isinstance(resumed, SlaClockResumed)
    assert resumed.deadline == T0 + hours(13)  # 1 h used, 3 h left from 10 h
    first = ticket.clock(SlaMetric.FIRST_RESPONSE)
    (pause,) = first.pauses
    assert (pause.paused_at, pause.resumed_at, pause.reason) == (T0 + hours(1), T0 + hours(10),
                                                                 "pending")  # fmt: skip
    assert paused_by == 2
    achieved = ticket.at(hours(12), reply())[0].payload
    assert isinstance(achieved, SlaAchieved)
    assert achieved.elapsed_seconds == 3 * 3600


def test_on_hold_only_pauses_when_the_policy_says_so() -> None:
    ticket = Ticket(Rules(policy(pause_on=[TicketStatus.PENDING])))
    assert ticket.at(hours(1), status(TicketStatus.NEW, TicketStatus.ON_HOLD)) == []
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).state is ClockState.RUNNING


def test_next_response_runs_from_each_customer_message_to_the_next_reply() -> None:
    ticket = Ticket(Rules(policy()))
    assert ticket.at(hours(0.5), customer()) == []  # the first response is still owed
    ticket.at(hours(1), reply())
    started = ticket.at(hours(2), customer())
    assert kinds(started) == [("SlaClockStarted", "next_response")]
    assert ticket.at(hours(2.5), customer()) == []  # one at a time
    achieved = ticket.at(hours(3), reply())
    assert kinds(achieved) == [("SlaAchieved", "next_response")]
    assert kinds(ticket.at(hours(5), customer())) == [("SlaClockStarted", "next_response")]
    assert ticket.clock(SlaMetric.NEXT_RESPONSE, cycle=2).state is ClockState.RUNNING


def test_a_customer_message_on_a_pending_ticket_starts_a_running_clock() -> None:
    ticket = Ticket(Rules(policy()))
    ticket.at(hours(1), reply())
    ticket.at(hours(1), status(TicketStatus.OPEN, TicketStatus.PENDING))
    assert kinds(ticket.at(hours(5), customer())) == [("SlaClockStarted", "next_response")]
    emitted = ticket.at(hours(5), status(TicketStatus.PENDING, TicketStatus.OPEN))
    assert kinds(emitted) == [("SlaClockResumed", "resolution")]


def test_solving_stops_every_clock_and_reopening_starts_a_new_resolution_cycle() -> None:
    """Solving ends the periodic updates without a verdict: no more are owed."""
    ticket = Ticket(Rules(policy(periodic=60)))
    ticket.at(hours(1), reply())
    assert kinds(ticket.last)[-1] == ("SlaClockStarted", "periodic_update")
    solved = ticket.at(hours(1.5), TicketSolved(solved_by=AGENT))
    assert sorted(kinds(solved)) == [("SlaAchieved", "resolution"),
                                     ("SlaClockCancelled", "periodic_update")]  # fmt: skip
    reopened = ticket.at(hours(30), TicketReopened(reopened_by=CUSTOMER))
    assert kinds(reopened) == [("SlaClockStarted", "resolution")]
    assert ticket.clock(SlaMetric.RESOLUTION, cycle=2).started_at == T0 + hours(30)
    assert ticket.clock(SlaMetric.RESOLUTION, cycle=1).state is ClockState.ACHIEVED


def test_merging_and_closing_cancel_what_runs() -> None:
    ticket = Ticket(Rules(policy()))
    merged = ticket.at(hours(1), TicketMerged(into_ticket_id=uuid4(), into_number=7,
                                              merged_by=AGENT))  # fmt: skip
    assert all(isinstance(e.payload, SlaClockCancelled) for e in merged)
    assert {e.payload.reason for e in merged} == {"merged"}  # type: ignore[attr-defined]
    assert ticket.at(hours(1), TicketClosed(closed_by=AGENT)) == []


@pytest.mark.parametrize(
    ("rule", "elapsed_h", "deadline_h"),
    [
        # 2 h counted (1 h paused between 1 h and 2 h) when it becomes urgent (target 1 h) at 3 h:
        (RetargetRule.KEEP_ELAPSED, 2, 3),  # used up: breached at the change
        (RetargetRule.RESTART, 0, 4),
        (RetargetRule.FROM_CREATION, 2, 3),  # paused hour not counted either
    ],
)
def test_a_priority_change_retargets_by_the_policy_rule_without_losing_paused_time(
    rule: RetargetRule, elapsed_h: float, deadline_h: float
) -> None:
    ticket = Ticket(Rules(policy(retarget=rule)))
    ticket.at(hours(1), status(TicketStatus.NEW, TicketStatus.PENDING))
    ticket.at(hours(2), status(TicketStatus.PENDING, TicketStatus.OPEN))
    emitted = ticket.at(hours(3), TicketPriorityChanged(previous=Priority.NORMAL,
                                                        priority=Priority.URGENT,
                                                        changed_by=AGENT))  # fmt: skip
    retargeted = emitted[0].payload
    assert isinstance(retargeted, SlaClockRetargeted)
    assert (retargeted.previous_target_seconds, retargeted.target_seconds) == (4 * 3600, 3600)
    assert retargeted.elapsed_seconds == elapsed_h * 3600
    assert retargeted.deadline == T0 + hours(deadline_h)
    breached = [e for e in emitted if isinstance(e.payload, SlaBreached)]
    assert bool(breached) == (rule is not RetargetRule.RESTART)


def test_from_creation_counts_the_new_target_since_the_start() -> None:
    ticket = Ticket(Rules(policy(retarget=RetargetRule.FROM_CREATION, first=600,
                                 urgent_first=300)))  # fmt: skip
    ticket.at(hours(1), status(TicketStatus.NEW, TicketStatus.ON_HOLD))
    ticket.at(hours(3), status(TicketStatus.ON_HOLD, TicketStatus.OPEN))
    emitted = ticket.at(hours(4), TicketPriorityChanged(previous=Priority.NORMAL,
                                                        priority=Priority.URGENT,
                                                        changed_by=AGENT))  # fmt: skip
    retargeted = emitted[0].payload
    assert isinstance(retargeted, SlaClockRetargeted)
    assert retargeted.elapsed_seconds == 2 * 3600  # 4 h since opening, 2 h of them on hold
    assert retargeted.deadline == T0 + hours(7)


def test_a_group_change_can_select_another_policy() -> None:
    billing = policy("billing", first=30, position=10, conditions={"group_ids": ["billing"]})
    ticket = Ticket(Rules(policy(), billing))
    emitted = ticket.at(hours(0.25), TicketAssigned(group_id="billing", assigned_by=AGENT))
    moved = [e.payload for e in emitted if isinstance(e.payload, SlaClockRetargeted)]
    assert {(r.metric, r.policy.policy_id) for r in moved} == {
        (SlaMetric.FIRST_RESPONSE, "billing"), (SlaMetric.RESOLUTION, "billing")
    }  # fmt: skip
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).deadline == T0 + hours(0.5)
    # Only the assignee changing selects nothing new.
    assert ticket.at(hours(0.3), TicketAssigned(assignee_id="a-2", group_id="billing",
                                                assigned_by=AGENT)) == []  # fmt: skip


def test_key_accounts_match_by_tier() -> None:
    key = policy("key", first=30, position=1, conditions={"tiers": ["key_account"]})
    ticket = Ticket(Rules(policy(), key), organisation=Organisation(id="o-1", tier="key_account"))
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).policy.policy_id == "key"
    other = Ticket(Rules(policy(), key), organisation=Organisation(id="o-2"))
    assert other.clock(SlaMetric.FIRST_RESPONSE).policy.policy_id == "standard"


def test_an_organisation_that_becomes_a_key_account_retargets_its_open_clocks() -> None:
    key = policy("key", first=30, position=1, conditions={"tiers": ["key_account"]})
    ticket = Ticket(Rules(policy(), key), organisation=Organisation(id="o-1"))
    ticket.at(
        hours(0.5),
        TicketStatusChanged(
            previous=TicketStatus.NEW, status=TicketStatus.PENDING, changed_by=AGENT
        ),
    )
    emitted = ticket.at(
        hours(1),
        TicketOrganisationChanged(
            previous=Organisation(id="o-1"),
            changed_by=AGENT,
            organisation=Organisation(id="o-1", tier="key_account", account_manager_id="a-9"),
        ),
    )
    moved = [e.payload for e in emitted if isinstance(e.payload, SlaClockRetargeted)]
    assert {(r.metric, r.policy.policy_id, r.reason) for r in moved} == {
        (SlaMetric.FIRST_RESPONSE, "key", "tier"), (SlaMetric.RESOLUTION, "key", "tier")
    }  # fmt: skip
    # Paused at half an hour: the key account's 30 minutes are used up, the pause kept.
    first = ticket.clock(SlaMetric.FIRST_RESPONSE)
    assert first.elapsed == hours(0.5)
    assert [p.resumed_at for p in first.pauses] == [None]
    # The same organisation again (a manager change the policy does not look at): nothing.
    assert (
        ticket.at(
            hours(1.5),
            TicketOrganisationChanged(
                previous=None,
                changed_by=AGENT,
                organisation=Organisation(id="o-1", tier="key_account", account_manager_id="a-2"),
            ),
        )
        == []
    )


def test_a_redelivered_event_changes_nothing() -> None:
    ticket = Ticket(Rules(policy()))
    ticket.at(hours(1), reply())
    again = apply(ticket.state, EventEnvelope.new(
        reply(), tenant_id="acme", producer="ticketing", aggregate_id=ticket.id,
        aggregate_version=ticket.version, occurred_at=T0 + hours(1)), ticket.rules)  # fmt: skip
    assert again == []


def test_clock_ids_are_the_same_on_every_replay() -> None:
    rules = Rules(policy())
    ticket = Ticket(rules)
    opened = ticket._envelope(
        TicketOpened(number=42, subject="Refund", description="", opened_by=AGENT,
                     requester=Requester(customer_id="c-1"), priority=Priority.NORMAL,
                     channel=Channel.EMAIL, type=TicketType.QUESTION), T0)  # fmt: skip
    ticket.version = 1
    replayed, _ = open_ticket(opened, rules)
    assert [c.id for c in replayed.clocks] == [c.id for c in ticket.state.clocks]
    assert len({c.id for c in replayed.clocks}) == 2


def test_a_late_pause_takes_back_a_breach_it_disproves() -> None:
    ticket = Ticket(Rules(policy()))
    assert kinds(ticket.alarm(hours(4), horizon=hours(4))) == [("SlaBreached", "first_response")]
    # Set pending at 3 h, processed after the breach was announced: it was paused in time.
    emitted = ticket.at(hours(3), status(TicketStatus.NEW, TicketStatus.PENDING))
    revised = emitted[0].payload
    assert isinstance(revised, SlaVerdictRevised)
    assert (revised.previous, revised.verdict) == ("breached", "none")
    first = ticket.clock(SlaMetric.FIRST_RESPONSE)
    assert (first.state, first.breached_at, first.elapsed) == (ClockState.PAUSED, None, hours(3))
    ticket.at(hours(10), status(TicketStatus.PENDING, TicketStatus.OPEN))
    achieved = ticket.at(hours(10.5), reply())[0].payload
    assert isinstance(achieved, SlaAchieved)  # 3.5 h of 4 h, as a rebuild would find
    assert achieved.elapsed_seconds == 3.5 * 3600


def test_a_late_close_takes_back_the_breach_and_cancels() -> None:
    ticket = Ticket(Rules(policy()))
    ticket.alarm(hours(4), horizon=hours(4))
    ticket.at(hours(2), TicketMerged(into_ticket_id=uuid4(), into_number=7, merged_by=AGENT))
    assert kinds(ticket.last)[0] == ("SlaVerdictRevised", "first_response")
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).state is ClockState.CANCELLED
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).verdict is None


def test_a_retarget_follows_the_new_policys_pause_statuses() -> None:
    pausing = policy("standard", pause_on=[TicketStatus.ON_HOLD, TicketStatus.PENDING])
    billing = policy("billing", position=10, conditions={"group_ids": ["billing"]},
                     pause_on=[TicketStatus.PENDING])  # fmt: skip
    ticket = Ticket(Rules(pausing, billing))
    ticket.at(hours(1), status(TicketStatus.NEW, TicketStatus.ON_HOLD))
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).state is ClockState.PAUSED
    # Moved to billing, whose policy does not pause on hold: the clock counts again.
    emitted = ticket.at(hours(1.5), TicketAssigned(group_id="billing", assigned_by=AGENT))
    assert ("SlaClockResumed", "first_response") in kinds(emitted)
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).state is ClockState.RUNNING
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).deadline == T0 + hours(4.5)


def test_a_paused_clock_retargeted_below_its_elapsed_time_is_breached_at_the_change() -> None:
    ticket = Ticket(Rules(policy()))
    ticket.at(hours(2), status(TicketStatus.NEW, TicketStatus.ON_HOLD))
    emitted = ticket.at(hours(3), TicketPriorityChanged(previous=Priority.NORMAL,
                                                        priority=Priority.URGENT,
                                                        changed_by=AGENT))  # fmt: skip
    breached = [e for e in emitted if isinstance(e.payload, SlaBreached)]
    assert [e.occurred_at for e in breached] == [T0 + hours(3)]
    assert ticket.clock(SlaMetric.FIRST_RESPONSE).state is ClockState.PAUSED


def test_a_clock_keeps_what_the_ticket_was_when_it_ended() -> None:
    """Reports group a verdict by the assignee it was earned under, even when the events
    that follow are applied in the same batch."""
    ticket = Ticket(Rules(policy()))
    ticket.at(hours(0.1), TicketAssigned(assignee_id="anna", group_id="billing", assigned_by=AGENT))
    ticket.at(hours(0.5), reply())
    ticket.at(hours(0.6), TicketAssigned(assignee_id="boris", group_id="billing",
                                         assigned_by=AGENT))  # fmt: skip
    first = ticket.clock(SlaMetric.FIRST_RESPONSE)
    assert first.decided_as is not None
    assert (first.decided_as.assignee_id, first.decided_as.group_id) == ("anna", "billing")
    assert ticket.clock(SlaMetric.RESOLUTION).decided_as is None  # still open
    assert ticket.state.context().assignee_id == "boris"
