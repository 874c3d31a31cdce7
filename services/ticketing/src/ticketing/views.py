"""What the API returns for a ticket."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

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

    model_config = ConfigDict(from_attributes=True)

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
    def of(cls, ticket: Ticket) -> "TicketView":
        return cls.model_validate(ticket, from_attributes=True)
