"""Request bodies of the agents' API."""

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from helpdesk_contracts import Channel, Organisation, Priority, Requester, TicketStatus, TicketType

Body = Field(min_length=1, max_length=65_536)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


Files = "Uploads (POST /v1/attachments) to attach; each goes to one ticket"


class OpenTicketRequest(_Request):
    """An agent opens a ticket on a customer's behalf."""

    subject: str = Field(min_length=1, max_length=250)
    description: str = Body
    requester: Requester
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.PHONE
    type: TicketType = TicketType.QUESTION
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    organisation: Organisation | None = None
    attachment_ids: list[UUID] = Field(default_factory=list, max_length=20, description=Files)


class ReplyRequest(_Request):
    """A public reply to the requester."""

    body: str = Body
    channel: Channel | None = Field(default=None, description="Defaults to the ticket's channel")
    status: TicketStatus | None = Field(
        default=None, description="Status to leave the ticket in (a new ticket becomes open)"
    )
    attachment_ids: list[UUID] = Field(default_factory=list, max_length=20, description=Files)


class NoteRequest(_Request):
    """An internal note; the customer never sees it."""

    body: str = Body
    attachment_ids: list[UUID] = Field(default_factory=list, max_length=20, description=Files)


class UpdateTicketRequest(_Request):
    """Change any of these; fields left out stay as they are."""

    status: TicketStatus | None = None
    resolution: str | None = Field(default=None, max_length=2000)
    priority: Priority | None = None
    type: TicketType | None = None
    assignee_id: str | None = Field(default=None, max_length=100)
    group_id: str | None = Field(default=None, max_length=100)
    tags: list[str] | None = None
    custom_fields: dict[str, str | int | float | bool | None] | None = Field(
        default=None, description="Fields to set; null removes a field"
    )
    followers: list[str] | None = None

    def given(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class MergeRequest(_Request):
    into_ticket_id: UUID = Field(description="The ticket that keeps the conversation")


class LinkProblemRequest(_Request):
    problem_id: UUID = Field(description="The problem ticket this incident belongs to")


class SolveProblemRequest(_Request):
    message: str = Field(
        min_length=1, max_length=65_536, description="Sent to every incident's requester"
    )
