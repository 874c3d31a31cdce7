"""A ticket's facts, folded from its events: who asked, through what, who answered, whether
it is solved. Pure; the consumer loads and saves the facts around it."""

from typing import Any

from feedback.domain.surveys import TicketFacts
from helpdesk_contracts import (
    ActorKind,
    CustomerReplied,
    EventEnvelope,
    ResponseSent,
    TicketAssigned,
    TicketClosed,
    TicketMerged,
    TicketOpened,
    TicketOrganisationChanged,
    TicketPriorityChanged,
    TicketReopened,
    TicketSolved,
    TicketTagsChanged,
)

FOLDED = frozenset(
    e.event_type
    for e in (
        TicketOpened, ResponseSent, CustomerReplied, TicketAssigned, TicketPriorityChanged,
        TicketSolved, TicketReopened, TicketClosed, TicketTagsChanged, TicketMerged,
        TicketOrganisationChanged,
    )
)  # fmt: skip
"""The ticket events that change what this service keeps; the others are skipped."""


def opened(envelope: EventEnvelope[TicketOpened]) -> TicketFacts:
    p = envelope.payload
    assert envelope.aggregate_id is not None  # ticket events require it (contracts)
    organisation = p.organisation
    return TicketFacts(
        tenant_id=envelope.tenant_id,
        ticket_id=envelope.aggregate_id,
        number=p.number,
        customer_id=p.requester.customer_id,
        channel=p.channel.value,
        priority=p.priority.value,
        opened_at=envelope.occurred_at,
        language=p.requester.language,
        organisation_id=organisation.id if organisation else None,
        account_manager_id=organisation.account_manager_id if organisation else None,
        tags=tuple(p.tags),
        last_customer_at=envelope.occurred_at,
        changed=True,
    )


def apply(ticket: TicketFacts, envelope: EventEnvelope[Any]) -> None:
    """Fold one event (not TicketOpened) into the ticket's facts."""
    p, at = envelope.payload, envelope.occurred_at
    match p:
        case ResponseSent():
            ticket.last_replier_id = p.agent_id
            if ticket.first_response_at is None:
                ticket.first_response_at = at
        case CustomerReplied():
            ticket.last_customer_at = at
        case TicketAssigned():
            ticket.assignee_id, ticket.group_id = p.assignee_id, p.group_id
        case TicketPriorityChanged():
            ticket.priority = p.priority.value
        case TicketSolved():
            ticket.status, ticket.solved_at = "solved", at
            ticket.solved_by_system = p.solved_by.kind is ActorKind.SYSTEM
            ticket.assignee_at_solve = ticket.assignee_id
        case TicketReopened():
            ticket.status = "open"
            ticket.reopens += 1
        case TicketClosed():
            if ticket.status != "solved":  # closed after a solve stays surveyable
                ticket.status = "closed"
        case TicketTagsChanged():
            ticket.tags = tuple(p.tags)
        case TicketMerged():
            ticket.merged = True
        case TicketOrganisationChanged():
            organisation = p.organisation
            ticket.organisation_id = organisation.id if organisation else None
            ticket.account_manager_id = organisation.account_manager_id if organisation else None
        case _:
            return
    ticket.changed = True
