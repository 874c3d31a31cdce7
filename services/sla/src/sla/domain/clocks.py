"""SLA clocks: what each ticket event does to a ticket's clocks, and what it publishes.

Pure: a `TicketClocks` is the SLA service's view of one ticket with its open clocks; each
ticket event (`apply`) and each alarm (`alarm`) changes it and returns the SLA events to
publish. The service loads it, applies, stores it and schedules `next_alarm` as a timer.

The rules, as a support manager expects them (Zendesk's and Jira's where they agree):
- `TicketOpened` starts first response and resolution; the first `ResponseSent` stops first
  response; each `CustomerReplied` after that starts a next-response clock (one at a time),
  which the agents' next reply stops; periodic update runs from each agent's reply to the
  next. Solving stops every clock (a ticket solved without a reply has kept its promise of
  an answer, as in Zendesk) and cancels the periodic update (no more updates are owed);
  reopening starts a new resolution cycle, with its own verdict; closing or being merged
  into another ticket cancels what still runs.
- A status in the policy's `pause_on` (pending, on hold) pauses the open clocks; leaving it
  resumes them. Each pause is kept in the clock's ledger with its reason and the events
  that began and ended it.
- A change of priority, group, type, tags or organisation selects the policy again and
  re-targets each open clock by the policy's rule (`RetargetRule`); paused time is never
  counted, whatever the rule.
- Every verdict is decided by event time: a clock stopped at or before its deadline is
  achieved, however late the stop is processed; a breach is at the deadline. An event that
  shows a deadline passed while the clock ran (a late stop, a pause after it) publishes the
  breach first, so no breach depends on a timer firing. A breach already published that an
  event stamped before it disproves (a stop, a pause, a re-target or a cancellation that
  occurred in time but was processed late) is revised with `SlaVerdictRevised`.
- Warnings are for people: they fire by the wall clock at fractions of the target while
  the clock runs, once per threshold.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from helpdesk_contracts import (
    CustomerReplied,
    EventEnvelope,
    PolicyRef,
    ResponseSent,
    RetargetRule,
    SlaAchieved,
    SlaBreached,
    SlaClockCancelled,
    SlaClockPaused,
    SlaClockResumed,
    SlaClockRetargeted,
    SlaClockStarted,
    SlaClockStopped,
    SlaEvent,
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
    TicketTagsChanged,
    TicketTypeChanged,
    Verdict,
)
from sla.domain.policies import Policy, TicketFacts

_CLOCK_IDS = uuid5(NAMESPACE_URL, "urn:helpdesk:sla:clock")
_ZERO = timedelta(0)


class BusinessTime(Protocol):
    """A calendar's arithmetic (see `calendar.BusinessCalendar`)."""

    def add(self, start: datetime, business: timedelta) -> datetime: ...

    def between(self, a: datetime, b: datetime) -> timedelta: ...


class Rules(Protocol):
    """What the clocks need from the tenant's configuration."""

    def select(self, tenant_id: str, ticket: TicketFacts) -> tuple[Policy, int | None]:
        """The ticket's policy, and the current version of its calendar (if it has one)."""
        ...

    def calendar(self, tenant_id: str, policy: PolicyRef) -> BusinessTime:
        """The business time a clock of this policy reference counts."""
        ...


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    ACHIEVED = "achieved"
    STOPPED = "stopped"  # stopped after its breach
    CANCELLED = "cancelled"


OPEN = frozenset({ClockState.RUNNING, ClockState.PAUSED})


@dataclass
class Pause:
    """One entry of a clock's pause ledger."""

    paused_at: datetime
    reason: str
    paused_by: UUID
    resumed_at: datetime | None = None
    resumed_by: UUID | None = None


@dataclass
class Clock:
    """One run of one metric on one ticket."""

    id: UUID
    metric: SlaMetric
    cycle: int
    policy: PolicyRef
    target: timedelta
    thresholds: tuple[float, ...]
    pause_on: frozenset[TicketStatus]
    started_at: datetime
    started_by: UUID
    state: ClockState = ClockState.RUNNING
    elapsed: timedelta = _ZERO
    """Business time counted until `since` (while running) or until the pause."""
    since: datetime | None = None
    """When it last started counting; None unless running."""
    deadline: datetime | None = None
    """When it breaches if it keeps running; None unless running."""
    breached_at: datetime | None = None
    warned: tuple[float, ...] = ()
    ended_at: datetime | None = None
    ended_by: UUID | None = None
    pauses: list[Pause] = field(default_factory=list)
    decided_as: "Context | None" = None
    """What the ticket was when the clock ended (reports group by it); None while open."""

    @property
    def is_open(self) -> bool:
        return self.state in OPEN

    @property
    def verdict(self) -> Verdict | None:
        if self.breached_at is not None:
            return Verdict.BREACHED
        return Verdict.ACHIEVED if self.state is ClockState.ACHIEVED else None


@dataclass(frozen=True)
class Context:
    """What reports group a clock by: the ticket as it was when the clock's outcome was
    decided, not as it became later."""

    priority: str
    channel: str
    group_id: str | None
    assignee_id: str | None


@dataclass(frozen=True)
class Emitted:
    """An SLA event to publish: its payload, when it happened and what caused it."""

    payload: SlaEvent
    occurred_at: datetime
    caused_by: UUID | None


@dataclass
class TicketClocks:
    """The SLA service's view of one ticket: what policies match on, and its clocks."""

    tenant_id: str
    facts: TicketFacts
    status: TicketStatus
    opened_at: datetime
    version: int
    """The last ticket event applied (its aggregate_version)."""
    assignee_id: str | None = None
    clocks: list[Clock] = field(default_factory=list)
    """Open clocks, and those that ended in this pass (the service stores and drops them)."""
    cycles: dict[SlaMetric, int] = field(default_factory=dict)
    """How many clocks of each metric were started, for their ids."""

    def context(self) -> "Context":
        """The ticket as reports group its clocks, now."""
        f = self.facts
        return Context(f.priority.value, f.channel.value, f.group_id, self.assignee_id)


def clock_id(ticket_id: UUID, metric: SlaMetric, cycle: int) -> UUID:
    """Deterministic, so a rebuild or a what-if replay names every clock the same."""
    return uuid5(_CLOCK_IDS, f"{ticket_id}/{metric.value}/{cycle}")


_PAUSE_STATUSES = frozenset({TicketStatus.PENDING, TicketStatus.ON_HOLD})


def open_ticket(
    envelope: EventEnvelope[TicketOpened], rules: Rules
) -> tuple[TicketClocks, list[Emitted]]:
    """A ticket's clocks from its `TicketOpened`."""
    e = envelope.payload
    assert envelope.aggregate_id is not None
    assert envelope.aggregate_version is not None
    facts = TicketFacts(
        ticket_id=envelope.aggregate_id,
        number=e.number,
        priority=e.priority,
        channel=e.channel,
        type=e.type,
        tags=tuple(e.tags),
        organisation_id=e.organisation.id if e.organisation else None,
        tier=e.organisation.tier if e.organisation else None,
    )
    ticket = TicketClocks(
        tenant_id=envelope.tenant_id,
        facts=facts,
        status=TicketStatus.NEW,
        opened_at=envelope.occurred_at,
        version=envelope.aggregate_version,
    )
    session = _Session(ticket, rules, envelope.occurred_at, envelope.event_id)
    for metric in (SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION):
        session.start(metric)
    return ticket, session.emitted


def apply(ticket: TicketClocks, envelope: EventEnvelope[Any], rules: Rules) -> list[Emitted]:
    """Apply one of the ticket's events (after `TicketOpened`); events of a version already
    applied change nothing (a redelivery)."""
    version = envelope.aggregate_version
    if version is not None and version <= ticket.version:
        return []
    if version is not None:
        ticket.version = version
    s = _Session(ticket, rules, envelope.occurred_at, envelope.event_id)
    match envelope.payload:
        case ResponseSent():
            s.stop(SlaMetric.FIRST_RESPONSE)
            s.stop(SlaMetric.NEXT_RESPONSE)
            s.stop(SlaMetric.PERIODIC_UPDATE)
            if ticket.status not in (TicketStatus.SOLVED, TicketStatus.CLOSED):
                s.start(SlaMetric.PERIODIC_UPDATE)
        case CustomerReplied():
            if not s.has_open(SlaMetric.FIRST_RESPONSE) and not s.has_open(SlaMetric.NEXT_RESPONSE):
                s.start(SlaMetric.NEXT_RESPONSE, customer_wrote=True)
        case TicketStatusChanged(status=status):
            ticket.status = status
            s.follow_status()
        case TicketSolved():
            ticket.status = TicketStatus.SOLVED
            s.follow_status()
            for metric in (SlaMetric.FIRST_RESPONSE, SlaMetric.NEXT_RESPONSE, SlaMetric.RESOLUTION):
                s.stop(metric)
            # Updates are owed while the ticket is worked: solving ends the need, not a cycle
            # kept in time (a reply that solves would count as one kept in no time at all).
            for clock in s.open_clocks(SlaMetric.PERIODIC_UPDATE):
                s.cancel_one(clock, "solved")
        case TicketReopened():
            ticket.status = TicketStatus.OPEN
            s.start(SlaMetric.RESOLUTION)
        case TicketClosed():
            ticket.status = TicketStatus.CLOSED
            s.cancel_all("closed")
        case TicketMerged():
            s.cancel_all("merged")
        case TicketPriorityChanged(priority=priority):
            s.refacts(replace(ticket.facts, priority=priority), "priority")
        case TicketTypeChanged(type=ticket_type):
            s.refacts(replace(ticket.facts, type=ticket_type), "type")
        case TicketTagsChanged(tags=tags):
            s.refacts(replace(ticket.facts, tags=tuple(tags)), "tags")
        case TicketAssigned(assignee_id=assignee, group_id=group):
            ticket.assignee_id = assignee
            s.refacts(replace(ticket.facts, group_id=group), "group")
        case TicketOrganisationChanged(organisation=org):
            facts = replace(ticket.facts, organisation_id=org.id if org else None,
                            tier=org.tier if org else None)  # fmt: skip
            s.refacts(facts, "tier")
        case _:
            pass  # notes, followers, fields, links: no clock depends on them
    return s.emitted


def alarm(
    ticket: TicketClocks, rules: Rules, now: datetime, breach_horizon: datetime
) -> list[Emitted]:
    """The wall clock reached `now`: publish the warnings now due, and the breaches whose
    deadline is at or before `breach_horizon` (the time up to which every event that could
    stop a clock has been applied)."""
    s = _Session(ticket, rules, now, None)
    for clock in ticket.clocks:
        if clock.state is not ClockState.RUNNING or clock.breached_at is not None:
            continue
        assert clock.deadline is not None
        if clock.deadline <= breach_horizon:
            s.breach(clock)
            continue
        calendar = rules.calendar(ticket.tenant_id, clock.policy)
        for threshold, due in _warnings(clock, calendar):
            if due <= now:
                s.warn(clock, threshold, due)
    return s.emitted


def reapply(ticket: TicketClocks, rules: Rules, now: datetime) -> list[Emitted]:
    """An admin asked for the current policies on the ticket's open clocks (which otherwise
    keep the version they started with): each is re-targeted by the policy's rule."""
    session = _Session(ticket, rules, now, None)
    session.retarget_open("policy_reapplied")
    return session.emitted


@dataclass(frozen=True)
class BreachedClock:
    """A running clock the watermark has just passed: what its breach announces."""

    tenant_id: str
    ticket_id: UUID
    ticket_number: int
    clock_id: UUID
    metric: SlaMetric
    policy: PolicyRef
    target: timedelta
    deadline: datetime
    assignee_id: str | None
    group_id: str | None


def breached(clock: BreachedClock) -> Emitted:
    """The breach of a clock that ran past its deadline, dated at the deadline (what
    `alarm` publishes for a ticket in hand; this for a sweep of many at once)."""
    payload = SlaBreached(
        ticket_id=clock.ticket_id, ticket_number=clock.ticket_number, clock_id=clock.clock_id,
        metric=clock.metric, policy=clock.policy, target_seconds=_seconds(clock.target),
        deadline=clock.deadline, assignee_id=clock.assignee_id, group_id=clock.group_id,
    )  # fmt: skip
    return Emitted(payload, clock.deadline, None)


def next_alarm(clock: Clock, calendar: BusinessTime) -> datetime | None:
    """When this clock next needs the wall clock: its next warning. (Its breach waits for
    the watermark, not for the wall clock: see `alarm`.)"""
    if clock.state is not ClockState.RUNNING or clock.breached_at is not None:
        return None
    return min((due for _, due in _warnings(clock, calendar)), default=None)


def _warnings(clock: Clock, calendar: BusinessTime) -> Iterable[tuple[float, datetime]]:
    assert clock.since is not None
    for threshold in clock.thresholds:
        if threshold in clock.warned:
            continue
        at = clock.target * threshold
        yield threshold, (clock.since if at <= clock.elapsed else
                          calendar.add(clock.since, at - clock.elapsed))  # fmt: skip


class _Session:
    """One event (or alarm) applied to one ticket: the changes and what they publish."""

    def __init__(self, ticket: TicketClocks, rules: Rules, at: datetime, cause: UUID | None):
        self.ticket = ticket
        self.rules = rules
        self.at = at
        self.cause = cause
        self.emitted: list[Emitted] = []

    # -- helpers --------------------------------------------------------------------------

    def _emit(
        self, clock: Clock, make: Callable[..., SlaEvent], at: datetime, **fields: Any
    ) -> None:
        payload = make(
            ticket_id=self.ticket.facts.ticket_id,
            ticket_number=self.ticket.facts.number,
            clock_id=clock.id,
            metric=clock.metric,
            **fields,
        )
        self.emitted.append(Emitted(payload, at, self.cause))

    def _calendar(self, clock: Clock) -> BusinessTime:
        return self.rules.calendar(self.ticket.tenant_id, clock.policy)

    def _open(self, metric: SlaMetric) -> list[Clock]:
        return [c for c in self.ticket.clocks if c.metric is metric and c.is_open]

    def open_clocks(self, metric: SlaMetric) -> list[Clock]:
        return self._open(metric)

    def has_open(self, metric: SlaMetric) -> bool:
        return bool(self._open(metric))

    def _now_for(self, clock: Clock) -> datetime:
        """The event's time, never before the clock last changed (time only moves on)."""
        floor = clock.since or (clock.pauses[-1].paused_at if clock.pauses else clock.started_at)
        return max(self.at, floor)

    def _elapsed(self, clock: Clock, at: datetime) -> timedelta:
        if clock.state is ClockState.RUNNING:
            assert clock.since is not None
            return clock.elapsed + self._calendar(clock).between(clock.since, at)
        return clock.elapsed

    def _deadline(self, clock: Clock, at: datetime) -> datetime:
        left = clock.target - clock.elapsed
        return at if left <= _ZERO else self._calendar(clock).add(at, left)

    def _withdraw(self, clock: Clock) -> None:
        """An event stamped before a published breach shows the clock was not breached then
        (it paused, was re-targeted or cancelled in time, processed late): the breach is
        taken back with its own event, never silently."""
        at = self._now_for(clock)
        if clock.breached_at is None or self.at >= clock.breached_at:
            return
        previous, clock.breached_at = clock.breached_at, None
        self._emit(clock, SlaVerdictRevised, at, previous=Verdict.BREACHED, verdict=Verdict.NONE,
                   decided_at=self.at, deadline=previous, reason="late_event")  # fmt: skip

    def _catch_up(self, clock: Clock) -> None:
        """The event shows the deadline passed while the clock ran: breach at the deadline."""
        if (
            clock.state is ClockState.RUNNING
            and clock.breached_at is None
            and clock.deadline is not None
            and clock.deadline < self.at
        ):
            self.breach(clock)

    # -- transitions ----------------------------------------------------------------------

    def start(self, metric: SlaMetric, *, customer_wrote: bool = False) -> None:
        ticket = self.ticket
        policy, calendar_version = self.rules.select(ticket.tenant_id, ticket.facts)
        target = policy.spec.target(ticket.facts.priority, metric)
        if target is None:
            return
        cycle = ticket.cycles.get(metric, 0) + 1
        ticket.cycles[metric] = cycle
        assert self.cause is not None
        clock = Clock(
            id=clock_id(ticket.facts.ticket_id, metric, cycle),
            metric=metric,
            cycle=cycle,
            policy=_reference(policy, calendar_version, target.business_hours),
            target=timedelta(seconds=target.seconds),
            thresholds=policy.spec.thresholds,
            pause_on=frozenset(policy.spec.pause_on) & _PAUSE_STATUSES,
            started_at=self.at,
            started_by=self.cause,
            since=self.at,
        )
        clock.deadline = self._deadline(clock, self.at)
        ticket.clocks.append(clock)
        self._emit(clock, SlaClockStarted, self.at, policy=clock.policy,
                   target_seconds=_seconds(clock.target), started_at=self.at,
                   deadline=clock.deadline)  # fmt: skip
        # A customer's message ends the wait on the customer (ticketing moves the ticket
        # back to open right after): the clock it starts does not begin paused.
        waiting = ticket.status is TicketStatus.PENDING and customer_wrote
        if ticket.status in clock.pause_on and not waiting:
            self._pause(clock, ticket.status.value)

    def stop(self, metric: SlaMetric) -> None:
        for clock in self._open(metric):
            self._catch_up(clock)
            at = self._now_for(clock)
            elapsed = self._elapsed(clock, at)
            self._close_pause(clock, at)
            clock.elapsed, clock.since = elapsed, None
            clock.ended_at, clock.ended_by, clock.decided_as = at, self.cause, self.ticket.context()
            in_time = elapsed <= clock.target
            if clock.breached_at is None and not in_time:  # used up while paused or re-targeted
                clock.deadline = clock.deadline or at
                self.breach(clock)
            if clock.breached_at is None or (in_time and at <= clock.breached_at):
                previous = clock.breached_at
                clock.state, clock.breached_at = ClockState.ACHIEVED, None
                deadline = clock.deadline or at
                clock.deadline = None
                if previous is not None:  # the timer announced a breach this stop disproves
                    self._emit(clock, SlaVerdictRevised, at, previous=Verdict.BREACHED,
                               verdict=Verdict.ACHIEVED, decided_at=at, deadline=previous,
                               reason="late_event")  # fmt: skip
                else:
                    self._emit(clock, SlaAchieved, at, policy=clock.policy,
                               target_seconds=_seconds(clock.target), achieved_at=at,
                               deadline=deadline, elapsed_seconds=_seconds(elapsed))  # fmt: skip
            else:
                clock.state, clock.deadline = ClockState.STOPPED, None
                self._emit(clock, SlaClockStopped, at, stopped_at=at, deadline=clock.breached_at,
                           elapsed_seconds=_seconds(elapsed))  # fmt: skip

    def breach(self, clock: Clock) -> None:
        assert clock.deadline is not None
        self._breach_at(clock, clock.deadline)

    def _breach_at(self, clock: Clock, when: datetime) -> None:
        clock.breached_at = when
        self._emit(clock, SlaBreached, when, policy=clock.policy,
                   target_seconds=_seconds(clock.target), deadline=when,
                   assignee_id=self.ticket.assignee_id,
                   group_id=self.ticket.facts.group_id)  # fmt: skip
        # A breach caused by the passing of time, not by the event being applied.
        last = self.emitted[-1]
        self.emitted[-1] = Emitted(last.payload, last.occurred_at, None)

    def warn(self, clock: Clock, threshold: float, due: datetime) -> None:
        assert clock.deadline is not None
        clock.warned = tuple(sorted({*clock.warned, threshold}))
        self._emit(clock, SlaWarning, due, threshold=threshold, deadline=clock.deadline,
                   assignee_id=self.ticket.assignee_id,
                   group_id=self.ticket.facts.group_id)  # fmt: skip

    def cancel_all(self, reason: str) -> None:
        for clock in self.ticket.clocks:
            if not clock.is_open:
                continue
            self._withdraw(clock)
            self._catch_up(clock)
            at = self._now_for(clock)
            clock.elapsed = self._elapsed(clock, at)
            self._close_pause(clock, at)
            clock.state, clock.since, clock.deadline = ClockState.CANCELLED, None, None
            clock.ended_at, clock.ended_by, clock.decided_as = at, self.cause, self.ticket.context()
            self._emit(clock, SlaClockCancelled, at, cancelled_at=at, reason=reason)

    def follow_status(self) -> None:
        """Pause or resume the open clocks as the ticket's new status asks."""
        status = self.ticket.status
        for clock in self.ticket.clocks:
            pausing = status in clock.pause_on  # as the clock's own policy version says
            if clock.state is ClockState.RUNNING and pausing:
                self._catch_up(clock)
                self._pause(clock, status.value)
            elif clock.state is ClockState.PAUSED and not pausing:
                self._resume(clock)

    def _pause(self, clock: Clock, reason: str) -> None:
        self._withdraw(clock)
        at = self._now_for(clock)
        clock.elapsed = self._elapsed(clock, at)
        clock.state, clock.since, clock.deadline = ClockState.PAUSED, None, None
        assert self.cause is not None
        clock.pauses.append(Pause(paused_at=at, reason=reason, paused_by=self.cause))
        self._emit(clock, SlaClockPaused, at, paused_at=at, reason=reason,
                   elapsed_seconds=_seconds(clock.elapsed))  # fmt: skip

    def _resume(self, clock: Clock) -> None:
        at = self._now_for(clock)
        self._close_pause(clock, at)
        clock.state, clock.since = ClockState.RUNNING, at
        clock.deadline = clock.breached_at or self._deadline(clock, at)
        self._emit(clock, SlaClockResumed, at, resumed_at=at, deadline=clock.deadline,
                   elapsed_seconds=_seconds(clock.elapsed))  # fmt: skip

    def _close_pause(self, clock: Clock, at: datetime) -> None:
        if clock.pauses and clock.pauses[-1].resumed_at is None:
            last = clock.pauses[-1]
            if last.paused_at == at:  # paused and resumed by one moment: nothing to prove
                clock.pauses.pop()
            else:
                last.resumed_at, last.resumed_by = at, self.cause

    def refacts(self, facts: TicketFacts, reason: str) -> None:
        """The ticket changed in a way policies look at: re-target its open clocks."""
        if facts == self.ticket.facts:
            return
        self.ticket.facts = facts
        self.retarget_open(reason)

    def retarget_open(self, reason: str) -> None:
        """Select the ticket's policy again and re-target each open clock by it."""
        facts = self.ticket.facts
        policy, calendar_version = self.rules.select(self.ticket.tenant_id, facts)
        for clock in [c for c in self.ticket.clocks if c.is_open]:
            target = policy.spec.target(facts.priority, clock.metric)
            if target is None:
                self._catch_up(clock)
                self.cancel_one(clock, "not_measured")
                continue
            reference = _reference(policy, calendar_version, target.business_hours)
            seconds = timedelta(seconds=target.seconds)
            if reference == clock.policy and seconds == clock.target:
                continue
            self._retarget(clock, reference, seconds, policy, reason)

    def cancel_one(self, clock: Clock, reason: str) -> None:
        self._withdraw(clock)
        at = self._now_for(clock)
        clock.elapsed = self._elapsed(clock, at)
        self._close_pause(clock, at)
        clock.state, clock.since, clock.deadline = ClockState.CANCELLED, None, None
        clock.ended_at, clock.ended_by, clock.decided_as = at, self.cause, self.ticket.context()
        self._emit(clock, SlaClockCancelled, at, cancelled_at=at, reason=reason)

    def _retarget(
        self, clock: Clock, reference: PolicyRef, target: timedelta, policy: Policy, why: str
    ) -> None:
        self._withdraw(clock)
        self._catch_up(clock)
        at = self._now_for(clock)
        elapsed = self._elapsed(clock, at)
        previous = clock.target
        rule = policy.spec.retarget
        clock.policy, clock.target, clock.thresholds = reference, target, policy.spec.thresholds
        clock.pause_on = frozenset(policy.spec.pause_on) & _PAUSE_STATUSES
        calendar = self._calendar(clock)  # the new policy's
        match rule:
            case RetargetRule.KEEP_ELAPSED:
                clock.elapsed = elapsed
            case RetargetRule.RESTART:
                clock.elapsed = _ZERO
            case RetargetRule.FROM_CREATION:
                paused = sum(
                    (calendar.between(p.paused_at, p.resumed_at or at) for p in clock.pauses),
                    _ZERO,
                )
                clock.elapsed = max(calendar.between(clock.started_at, at) - paused, _ZERO)
        clock.warned = tuple(t for t in clock.warned if target * t <= clock.elapsed)
        if clock.state is ClockState.RUNNING:
            clock.since = at
            clock.deadline = clock.breached_at or self._deadline(clock, at)
        self._emit(clock, SlaClockRetargeted, at, policy=reference, rule=rule,
                   previous_target_seconds=_seconds(previous),
                   target_seconds=_seconds(target), elapsed_seconds=_seconds(clock.elapsed),
                   retargeted_at=at, deadline=clock.deadline, reason=why)  # fmt: skip
        if clock.breached_at is None and clock.elapsed >= target:
            self._breach_at(clock, at)  # the new target was already used up: breached now
        # The new policy may pause on other statuses than the old one.
        status = self.ticket.status
        if clock.state is ClockState.RUNNING and status in clock.pause_on:
            self._pause(clock, status.value)
        elif clock.state is ClockState.PAUSED and status not in clock.pause_on:
            self._resume(clock)


def _reference(policy: Policy, calendar_version: int | None, business: bool) -> PolicyRef:
    calendar = policy.spec.calendar_id if business else None
    return PolicyRef(
        policy_id=policy.id,
        policy_version=policy.version,
        calendar_id=calendar,
        calendar_version=calendar_version if calendar else None,
        business_hours=business,
    )


def _seconds(duration: timedelta) -> int:
    return int(duration.total_seconds())


def replay(
    history: Iterable[tuple[EventEnvelope[Any], Rules]], breach_horizon: datetime
) -> TicketClocks | None:
    """One ticket's clocks computed afresh from its events (oldest first), each applied
    under the rules paired with it, then the breaches the horizon allows. What a rebuild
    and a what-if run compute; None if the history does not start with `TicketOpened`.
    Warnings are not derived from events but sent by the wall clock: none is marked here
    (a rebuild keeps the record of those already sent)."""
    ticket: TicketClocks | None = None
    rules: Rules | None = None
    for envelope, rules in history:
        if isinstance(envelope.payload, TicketOpened):
            if ticket is None:
                ticket, _ = open_ticket(envelope, rules)
        elif ticket is not None:
            apply(ticket, envelope, rules)
    if ticket is not None and rules is not None:
        alarm(ticket, rules, datetime.min.replace(tzinfo=UTC), breach_horizon)
    return ticket
