"""What the API returns for a ticket."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from helpdesk_contracts import (
    Channel,
    EventEnvelope,
    ExternalRef,
    Organisation,
    Priority,
    Requester,
    TicketStatus,
    TicketType,
)
from ticketing.domain import Ticket
from ticketing.sla_feed import NO_DEADLINE


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
    followers: list[str]
    follow_up_of: UUID | None
    merged_into: UUID | None
    duplicates: list[UUID]
    problem_id: UUID | None
    incidents: list[UUID]
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


class TicketSummary(BaseModel):
    """A row of the ticket list."""

    id: UUID
    number: int
    version: int
    subject: str
    status: TicketStatus
    priority: Priority
    type: TicketType
    channel: Channel
    requester_id: str
    requester_name: str | None
    organisation_id: str | None
    tier: str | None
    assignee_id: str | None
    group_id: str | None
    tags: list[str]
    opened_at: datetime
    updated_at: datetime
    solved_at: datetime | None
    sla_deadline: datetime | None = Field(
        description="The next deadline of its running SLA clocks (past when breached)"
    )
    sla_breached: bool = Field(description="Whether a running SLA clock is breached")

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> "TicketSummary":
        deadline = row["sla_deadline"]
        deadline = None if deadline == NO_DEADLINE else deadline
        return cls.model_validate({**row, "id": row["ticket_id"], "sla_deadline": deadline})


class TimelineEntry(BaseModel):
    """One event of a ticket's history."""

    version: int
    event_id: UUID
    event_type: str
    occurred_at: datetime
    correlation_id: UUID
    data: dict[str, Any]

    @classmethod
    def of(cls, e: EventEnvelope[Any]) -> "TimelineEntry":
        return cls(
            version=e.aggregate_version or 0,
            event_id=e.event_id,
            event_type=e.event_type,
            occurred_at=e.occurred_at,
            correlation_id=e.correlation_id,
            data=e.payload.model_dump(mode="json"),
        )
