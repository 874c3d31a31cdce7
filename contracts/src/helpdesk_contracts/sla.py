"""SLA events: the clocks the SLA service runs on each ticket, and their verdicts.

A ticket has a clock per metric it is measured on (first response, next response,
resolution, periodic update); each run of a metric is one clock with its own `clock_id`
(every customer message that waits for an answer starts a new next-response clock, a
reopened ticket a new resolution clock). A clock is started, may be paused and resumed
(the ticket waits on the customer or is on hold) or re-targeted (its priority, group or
organisation tier changed), warns at fractions of its target, and ends with one verdict:
`SlaAchieved` (stopped in time), `SlaBreached` (its deadline passed while it ran; a
`SlaClockStopped` follows when it is stopped late) or `SlaClockCancelled` (merged,
closed, or no longer measured). An event processed late that changes a verdict already
published is announced by `SlaVerdictRevised`; the first verdict is never taken back
silently.

Times: `*_at` and `deadline` are event times (when what decided it happened, from the ticket
events' `occurred_at`), never processing times; elapsed and target durations are seconds of
the clock's business time (or of calendar time when `policy.business_hours` is false). The
envelope's `causation_id` is the ticket event that caused the SLA event (none for warnings
and breaches, which the passing of time causes). Keyed by `ticket_id`, so a ticket's SLA
events are in order, like its ticket events.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field

from helpdesk_contracts.envelope import MAX_BIGINT, Event, UtcDatetime
from helpdesk_contracts.values import ContractModel, Identifier

Seconds = Annotated[int, Field(ge=0, le=MAX_BIGINT)]


class SlaMetric(StrEnum):
    """What a clock measures."""

    FIRST_RESPONSE = "first_response"
    """From the ticket's opening to the first public reply of an agent."""
    NEXT_RESPONSE = "next_response"
    """From a customer's message (after the first response) to the agents' next reply."""
    RESOLUTION = "resolution"
    """From opening (or reopening) to solving."""
    PERIODIC_UPDATE = "periodic_update"
    """Between public replies of agents, while the ticket is not solved."""


class RetargetRule(StrEnum):
    """How a running clock takes a new target when the ticket's priority, group or tier change."""

    KEEP_ELAPSED = "keep_elapsed"
    """The business time already elapsed counts against the new target."""
    RESTART = "restart"
    """The clock starts again from the change, with the new target."""
    FROM_CREATION = "from_creation"
    """As if the new target had applied since the clock started (paused time still excluded)."""


class PolicyRef(ContractModel):
    """The policy version (and calendar version) a clock was computed with: its provenance."""

    policy_id: Identifier
    policy_version: int = Field(ge=1, le=MAX_BIGINT)
    calendar_id: Identifier | None = None
    """None: the target counts calendar time (24/7)."""
    calendar_version: int | None = Field(default=None, ge=1, le=MAX_BIGINT)
    business_hours: bool
    """Whether the target counts only the calendar's business hours."""


class SlaEvent(Event):
    """Base of the SLA events: which ticket, which clock, which metric."""

    ticket_id: UUID
    ticket_number: int = Field(ge=1, le=MAX_BIGINT)
    clock_id: UUID
    """One run of one metric on one ticket; every SLA event of that run carries it."""
    metric: SlaMetric

    def partition_key(self) -> str:
        """Keyed by the ticket, so a ticket's SLA events stay in order."""
        return str(self.ticket_id)


class SlaClockStarted(SlaEvent):
    """A clock started: the ticket now owes this metric by `deadline`."""

    event_type = "SlaClockStarted"

    policy: PolicyRef
    target_seconds: Seconds
    started_at: UtcDatetime
    deadline: UtcDatetime


class SlaClockPaused(SlaEvent):
    """A clock stopped counting: the ticket waits on the customer or is on hold."""

    event_type = "SlaClockPaused"

    paused_at: UtcDatetime
    reason: Identifier
    """The ticket status that paused it, e.g. "pending" or "on_hold"."""
    elapsed_seconds: Seconds


class SlaClockResumed(SlaEvent):
    """A paused clock counts again; its deadline moved by the paused time."""

    event_type = "SlaClockResumed"

    resumed_at: UtcDatetime
    deadline: UtcDatetime
    elapsed_seconds: Seconds


class SlaClockRetargeted(SlaEvent):
    """A clock's target changed because the ticket's priority, group, type, tags or
    organisation now select another target (or another policy)."""

    event_type = "SlaClockRetargeted"

    policy: PolicyRef
    rule: RetargetRule
    previous_target_seconds: Seconds
    target_seconds: Seconds
    elapsed_seconds: Seconds
    retargeted_at: UtcDatetime
    deadline: UtcDatetime | None
    """None while the clock is paused."""
    reason: Identifier
    """What changed, e.g. "priority"."""


class SlaWarning(SlaEvent):
    """A running clock reached a fraction of its target (by the wall clock: warnings are
    for people, published when that time comes)."""

    event_type = "SlaWarning"

    threshold: float = Field(gt=0, lt=1)
    deadline: UtcDatetime
    assignee_id: Identifier | None = None
    group_id: Identifier | None = None


class SlaBreached(SlaEvent):
    """A clock's deadline passed while it ran."""

    event_type = "SlaBreached"

    policy: PolicyRef
    target_seconds: Seconds
    deadline: UtcDatetime
    """When it was breached (event time: the deadline itself)."""
    assignee_id: Identifier | None = None
    group_id: Identifier | None = None


class SlaAchieved(SlaEvent):
    """A clock stopped in time."""

    event_type = "SlaAchieved"

    policy: PolicyRef
    target_seconds: Seconds
    achieved_at: UtcDatetime
    deadline: UtcDatetime
    elapsed_seconds: Seconds


class SlaClockStopped(SlaEvent):
    """A breached clock stopped (the late reply, the late solve): its final elapsed time."""

    event_type = "SlaClockStopped"

    stopped_at: UtcDatetime
    deadline: UtcDatetime
    elapsed_seconds: Seconds


class SlaClockCancelled(SlaEvent):
    """A clock ended without a verdict of its own, e.g. the ticket was merged into another."""

    event_type = "SlaClockCancelled"

    cancelled_at: UtcDatetime
    reason: Identifier
    """e.g. "merged", "closed", "not_measured" (its policy no longer has this target)."""


class Verdict(StrEnum):
    """How a clock stands."""

    ACHIEVED = "achieved"
    BREACHED = "breached"
    NONE = "none"
    """No verdict (yet): a breach taken back while the clock still runs, pauses or ends
    without one (cancelled)."""


class SlaVerdictRevised(SlaEvent):
    """An event processed after a verdict was published changed it: e.g. a reply that
    occurred before the deadline arrived after the breach had been announced."""

    event_type = "SlaVerdictRevised"

    previous: Verdict
    verdict: Verdict
    decided_at: UtcDatetime
    """The event time that decides the new verdict (e.g. when the reply was sent)."""
    deadline: UtcDatetime
    reason: Identifier
    """e.g. "late_event"."""
