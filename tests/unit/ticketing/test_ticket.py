from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from helpdesk_contracts import (
    Actor,
    ActorKind,
    EventEnvelope,
    Priority,
    Requester,
    TicketAssigned,
    TicketOpened,
    TicketPriorityChanged,
    TicketReopened,
    TicketSolved,
    TicketStatus,
)
from ticketing.domain import OpenTicket, Ticket, TicketError

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")


def _command(**overrides: Any) -> OpenTicket:
    values: dict[str, Any] = {
        "subject": "Cannot log in",
        "description": "Password expired",
        "requester": Requester(customer_id="c-1", name="Anna"),
        "priority": Priority.HIGH,
        "opened_by": AGENT,
    }
    return OpenTicket(**(values | overrides))


def _envelopes(ticket: Ticket, events: list[Any], start: int = 1) -> list[EventEnvelope[Any]]:
    return [
        EventEnvelope.new(
            e,
            tenant_id="acme",
            producer="tests",
            aggregate_id=ticket.id,
            aggregate_version=start + i,
            occurred_at=AT + timedelta(minutes=start + i),
        )
        for i, e in enumerate(events)
    ]


class TestOpening:
    def test_records_one_ticket_opened_with_the_commands_data(self) -> None:
        ticket = Ticket.open(_command(), ticket_id=uuid4(), tenant_id="acme", number=7, at=AT)
        assert ticket.version == 1
        assert [type(e) for e in ticket.changes] == [TicketOpened]
        opened = ticket.changes[0]
        assert isinstance(opened, TicketOpened)
        assert (opened.number, opened.subject, opened.priority) == (
            7,
            "Cannot log in",
            Priority.HIGH,
        )
        assert ticket.status is TicketStatus.NEW
        assert ticket.opened_at == AT

    def test_refuses_a_number_below_one(self) -> None:
        with pytest.raises(TicketError, match="start at 1"):
            Ticket.open(_command(), ticket_id=uuid4(), tenant_id="acme", number=0, at=AT)

    def test_new_events_are_numbered_after_the_stored_version(self) -> None:
        ticket = Ticket.open(_command(), ticket_id=uuid4(), tenant_id="acme", number=1, at=AT)
        assert [v for v, _ in ticket.pending_versions()] == [1]


class TestRebuildingFromHistory:
    def test_an_empty_stream_is_no_ticket(self) -> None:
        assert Ticket.from_history([]) is None

    def test_folds_every_event_into_the_current_state(self) -> None:
        opened = Ticket.open(_command(), ticket_id=uuid4(), tenant_id="acme", number=3, at=AT)
        later = [
            TicketAssigned(assignee_id="agent-9", group_id="billing", assigned_by=AGENT),
            TicketPriorityChanged(
                previous=Priority.HIGH, priority=Priority.URGENT, changed_by=AGENT
            ),
            TicketSolved(solved_by=AGENT, resolution="refunded"),
            TicketReopened(reopened_by=AGENT, reason="customer wrote again"),
        ]
        history = _envelopes(opened, opened.changes) + _envelopes(opened, later, start=2)
        ticket = Ticket.from_history(history)
        assert ticket is not None
        assert ticket.version == 5
        assert ticket.changes == []
        assert (ticket.assignee_id, ticket.group_id) == ("agent-9", "billing")
        assert ticket.priority is Priority.URGENT
        assert ticket.status is TicketStatus.OPEN
        assert ticket.solved_at is None
        assert ticket.number == 3
        assert ticket.updated_at == history[-1].occurred_at
