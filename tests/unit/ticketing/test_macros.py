from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from helpdesk_contracts import Actor, ActorKind, Priority, Requester, ResponseSent, TicketStatus
from ticketing.domain import CannedResponse, OpenTicket, Ticket, apply_canned_response, render

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")


def ticket() -> Ticket:
    t = Ticket.open(
        OpenTicket(
            subject="Refund please", description="Charged twice",
            requester=Requester(customer_id="c-1", name="Maria Ivanova"), opened_by=AGENT,
            tags=("billing", "waiting"),
        ),
        ticket_id=uuid4(), tenant_id="acme", number=1042, at=AT,
    )  # fmt: skip
    t.changes.clear()
    return t


def test_placeholders_are_filled_from_the_ticket() -> None:
    body = (
        "Hello {{ requester.first_name }}, ticket #{{ticket.number}} ({{ticket.subject}})."
        " {{agent.name}}"
    )
    assert render(body, ticket(), "Oleg") == "Hello Maria, ticket #1042 (Refund please). Oleg"


def test_an_unknown_placeholder_is_refused_when_the_macro_is_saved() -> None:
    with pytest.raises(ValidationError, match="unknown placeholders"):
        CannedResponse(name="x", body="Dear {{customer.title}}")


def test_applying_records_a_reply_and_the_macros_changes_as_ordinary_events() -> None:
    t = ticket()
    macro = CannedResponse(
        name="Refund issued",
        body="Hi {{requester.first_name}}, we refunded you.",
        status=TicketStatus.SOLVED,
        add_tags=("refunded",),
        remove_tags=("waiting",),
        priority=Priority.LOW,
    )
    apply_canned_response(t, macro, AGENT, AT, message_id=uuid4())
    assert [e.event_type for e in t.changes] == [
        "ResponseSent", "TicketStatusChanged", "TicketPriorityChanged", "TicketTagsChanged",
        "TicketSolved",
    ]  # fmt: skip
    reply = t.changes[0]
    assert isinstance(reply, ResponseSent)
    assert reply.body == "Hi Maria, we refunded you."
    assert set(t.tags) == {"billing", "refunded"}
    assert t.status is TicketStatus.SOLVED
