"""Builders of realistic events for tests."""

from typing import Any
from uuid import UUID, uuid4

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    CustomerMessageReceived,
    EventEnvelope,
    InternalNoteAdded,
    Priority,
    Requester,
    TicketOpened,
    TicketSubmitted,
    TicketType,
)


def opened(ticket_id: UUID, tenant: str = "acme", number: int = 1) -> EventEnvelope[Any]:
    return EventEnvelope.new(
        TicketOpened(
            number=number,
            subject="Invoice shows the wrong amount",
            description="I was charged twice this month.",
            requester=Requester(customer_id="c-1", name="Anna", email="anna@example.com"),
            priority=Priority.NORMAL,
            channel=Channel.EMAIL,
            type=TicketType.QUESTION,
            opened_by=Actor(kind=ActorKind.AGENT, id="agent-7"),
        ),
        tenant_id=tenant,
        producer="tests",
        aggregate_id=ticket_id,
        aggregate_version=1,
    )


def note(ticket_id: UUID, version: int, tenant: str = "acme") -> EventEnvelope[Any]:
    return EventEnvelope.new(
        InternalNoteAdded(note_id=uuid4(), agent_id="agent-7", body=f"note {version}"),
        tenant_id=tenant,
        producer="tests",
        aggregate_id=ticket_id,
        aggregate_version=version,
    )


def submitted(
    external_id: str, tenant: str = "acme", source: str = "mail-gateway"
) -> EventEnvelope[Any]:
    return EventEnvelope.new(
        TicketSubmitted(
            source=source,
            external_id=external_id,
            subject="Cannot log in",
            description="The login page says my password expired.",
            requester=Requester(customer_id="c-42", name="Boris", email="boris@example.com"),
        ),
        tenant_id=tenant,
        producer=source,
    )


def envelopes_of(ticket: Any, at: Any) -> list[EventEnvelope[Any]]:
    """A domain ticket's recorded changes as the envelopes the store would hold."""
    return [
        EventEnvelope.new(
            event,
            tenant_id=ticket.tenant_id,
            producer="tests",
            aggregate_id=ticket.id,
            aggregate_version=version,
            occurred_at=at,
        )
        for version, event in ticket.pending_versions()
    ]


def customer_message(
    thread: str, message: str, tenant: str = "acme", body: str = "Where is my parcel?"
) -> EventEnvelope[Any]:
    return EventEnvelope.new(
        CustomerMessageReceived(
            source="mail-gateway",
            external_thread_id=thread,
            external_message_id=message,
            subject="Parcel not delivered",
            body=body,
            requester=Requester(customer_id="c-77", email="maria@example.com"),
        ),
        tenant_id=tenant,
        producer="mail-gateway",
    )
