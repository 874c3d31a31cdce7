"""How ticketing folds the SLA events into a clock row of its list."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from helpdesk_contracts import (
    EventEnvelope,
    PolicyRef,
    SlaBreached,
    SlaClockStarted,
    SlaEvent,
    SlaMetric,
    SlaVerdictRevised,
    Verdict,
)
from ticketing.sla_feed import fold

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
DEADLINE = AT + timedelta(hours=4)
POLICY = PolicyRef(policy_id="std", policy_version=1, business_hours=False)
CLOCK = {"ticket_id": uuid4(), "ticket_number": 1, "clock_id": uuid4(),
         "metric": SlaMetric.FIRST_RESPONSE}  # fmt: skip


def folded(*payloads: SlaEvent) -> dict[str, Any]:
    row: dict[str, Any] = {"running": False, "deadline": None, "breached": False}
    for p in payloads:
        fold(row, EventEnvelope.new(p, tenant_id="acme", producer="sla", occurred_at=AT))
    return row


def started() -> SlaClockStarted:
    return SlaClockStarted(**CLOCK, policy=POLICY, target_seconds=14400, started_at=AT,
                           deadline=DEADLINE)  # fmt: skip


def breached() -> SlaBreached:
    return SlaBreached(**CLOCK, policy=POLICY, target_seconds=14400, deadline=DEADLINE)


def revised(verdict: Verdict) -> SlaVerdictRevised:
    return SlaVerdictRevised(**CLOCK, previous=Verdict.BREACHED, verdict=verdict,
                             decided_at=AT, deadline=DEADLINE, reason="late_event")  # fmt: skip


def test_a_running_clock_carries_its_deadline_and_its_breach() -> None:
    assert folded(started(), breached()) == {"running": True, "deadline": DEADLINE,
                                             "breached": True}  # fmt: skip


def test_a_breach_revised_to_achieved_ends_the_clock() -> None:
    assert folded(started(), breached(), revised(Verdict.ACHIEVED)) == {
        "running": False, "deadline": None, "breached": False,
    }  # fmt: skip


def test_a_breach_taken_back_leaves_the_clock_running() -> None:
    assert folded(started(), breached(), revised(Verdict.NONE)) == {
        "running": True, "deadline": DEADLINE, "breached": False,
    }  # fmt: skip
