"""What the API returns for a ticket."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from helpdesk_contracts import (
    Channel,
    ExternalRef,
    Organisation,
    Priority,
    Requester,
    TicketStatus,
    TicketType,
)
from ticketing.domain import Ticket


class TicketView(BaseModel):
    """A ticket's current state, rebuilt from its events."""

    id: UUID
    number: int
    version: int
    subject: str
    description: str
    status: TicketStatus
    priority: Priority
    channel: Channel
    type: TicketType
    requester: Requester | None
    organisation: Organisation | None
    external_ref: ExternalRef | None
    tags: list[str]
    custom_fields: dict[str, Any]
    assignee_id: str | None
    group_id: str | None
    public_replies: int
    customer_replies: int
    internal_notes: int
    opened_at: datetime | None
    updated_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, t: Ticket) -> "TicketView":
        return cls(
            id=t.id,
            number=t.number,
            version=t.version,
            subject=t.subject,
            description=t.description,
            status=t.status,
            priority=t.priority,
            channel=t.channel,
            type=t.type,
            requester=t.requester,
            organisation=t.organisation,
            external_ref=t.external_ref,
            tags=list(t.tags),
            custom_fields=t.custom_fields,
            assignee_id=t.assignee_id,
            group_id=t.group_id,
            public_replies=t.public_replies,
            customer_replies=t.customer_replies,
            internal_notes=t.internal_notes,
            opened_at=t.opened_at,
            updated_at=t.updated_at,
            solved_at=t.solved_at,
            closed_at=t.closed_at,
        )
