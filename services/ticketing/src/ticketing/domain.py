"""The ticket aggregate: state folded from its events, and the rules that make new ones.

Pure code: no I/O, no clock, no ids generated here; callers pass them in.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from helpdesk_contracts import (
    Actor,
    Channel,
    CustomerReplied,
    Event,
    EventEnvelope,
    ExternalRef,
    InternalNoteAdded,
    Organisation,
    Priority,
    Requester,
    ResponseSent,
    TicketAssigned,
    TicketClosed,
    TicketOpened,
    TicketPriorityChanged,
    TicketReopened,
    TicketSolved,
    TicketStatus,
    TicketStatusChanged,
    TicketType,
)


class TicketError(Exception):
    """A command the ticket refuses, with the reason shown to the caller."""


class OpenTicket(BaseModel):
    """Command: open a ticket (from an agent or from another system)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    description: str
    requester: Requester
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.WEB
    type: TicketType = TicketType.QUESTION
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    organisation: Organisation | None = None
    external_ref: ExternalRef | None = None
    opened_by: Actor


@dataclass
class Ticket:
    """A ticket's current state; `changes` holds events recorded but not yet stored."""

    id: UUID
    tenant_id: str
    version: int = 0
    number: int = 0
    subject: str = ""
    description: str = ""
    status: TicketStatus = TicketStatus.NEW
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.WEB
    type: TicketType = TicketType.QUESTION
    requester: Requester | None = None
    organisation: Organisation | None = None
    external_ref: ExternalRef | None = None
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, Any] = field(default_factory=dict)
    assignee_id: str | None = None
    group_id: str | None = None
    opened_at: datetime | None = None
    updated_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    public_replies: int = 0
    customer_replies: int = 0
    internal_notes: int = 0
    changes: list[Event] = field(default_factory=list, repr=False)

    @classmethod
    def open(
        cls, cmd: OpenTicket, *, ticket_id: UUID, tenant_id: str, number: int, at: datetime
    ) -> "Ticket":
        """A new ticket with its `TicketOpened` recorded."""
        if number < 1:
            raise TicketError("ticket numbers start at 1")
        ticket = cls(id=ticket_id, tenant_id=tenant_id)
        ticket._record(
            TicketOpened(
                number=number,
                subject=cmd.subject,
                description=cmd.description,
                requester=cmd.requester,
                priority=cmd.priority,
                channel=cmd.channel,
                type=cmd.type,
                tags=list(cmd.tags),
                custom_fields=cmd.custom_fields,
                organisation=cmd.organisation,
                external_ref=cmd.external_ref,
                opened_by=cmd.opened_by,
            ),
            at,
        )
        return ticket

    @classmethod
    def from_history(cls, history: Sequence[EventEnvelope[Any]]) -> "Ticket | None":
        """Rebuild from the stored stream; None when the stream is empty."""
        if not history:
            return None
        first = history[0]
        assert first.aggregate_id is not None
        ticket = cls(id=first.aggregate_id, tenant_id=first.tenant_id)
        for envelope in history:
            ticket._apply(envelope.payload, envelope.occurred_at)
            ticket.version = envelope.aggregate_version or ticket.version + 1
        return ticket

    def pending_versions(self) -> Iterable[tuple[int, Event]]:
        """(version, event) for each recorded change, numbered after the stored version."""
        stored = self.version - len(self.changes)
        return ((stored + i + 1, e) for i, e in enumerate(self.changes))

    def _record(self, event: Event, at: datetime) -> None:
        self._apply(event, at)
        self.version += 1
        self.changes.append(event)

    def _apply(self, event: Event, at: datetime) -> None:
        self.updated_at = at
        match event:
            case TicketOpened():
                self.number = event.number
                self.subject = event.subject
                self.description = event.description
                self.requester = event.requester
                self.priority = event.priority
                self.channel = event.channel
                self.type = event.type
                self.tags = tuple(event.tags)
                self.custom_fields = dict(event.custom_fields)
                self.organisation = event.organisation
                self.external_ref = event.external_ref
                self.opened_at = at
            case ResponseSent():
                self.public_replies += 1
            case CustomerReplied():
                self.customer_replies += 1
            case InternalNoteAdded():
                self.internal_notes += 1
            case TicketAssigned():
                self.assignee_id = event.assignee_id
                self.group_id = event.group_id
            case TicketPriorityChanged():
                self.priority = event.priority
            case TicketStatusChanged():
                self.status = event.status
            case TicketSolved():
                self.status = TicketStatus.SOLVED
                self.solved_at = at
            case TicketReopened():
                self.status = TicketStatus.OPEN
                self.solved_at = None
            case TicketClosed():
                self.status = TicketStatus.CLOSED
                self.closed_at = at
            case _:
                pass  # events this version does not know about do not change the state
