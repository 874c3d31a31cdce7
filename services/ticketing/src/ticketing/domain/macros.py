"""Canned responses (macros): a reply template plus the changes that usually go with it.

Applying one records ordinary events (a public reply, status, tags, priority), so a
ticket's history shows what the agent actually sent, not "macro 12 was used".
"""

import re
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from helpdesk_contracts import Actor, Priority, Tags, TicketStatus
from ticketing.domain.ticket import Ticket

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_.]+)\s*\}\}")
PLACEHOLDERS = (
    "ticket.number",
    "ticket.subject",
    "requester.name",
    "requester.first_name",
    "agent.name",
)


class CannedResponse(BaseModel):
    """A tenant's named reply template; placeholders look like {{requester.first_name}}."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=65_536)
    status: TicketStatus | None = None
    add_tags: Tags = ()
    remove_tags: Tags = ()
    priority: Priority | None = None

    @field_validator("body")
    @classmethod
    def _known_placeholders(cls, body: str) -> str:
        unknown = sorted({m for m in _PLACEHOLDER.findall(body) if m not in PLACEHOLDERS})
        if unknown:
            raise ValueError(f"unknown placeholders {unknown}; known: {list(PLACEHOLDERS)}")
        return body


def render(body: str, ticket: Ticket, agent_name: str | None) -> str:
    """Fill the placeholders from the ticket (an unknown value renders as empty)."""
    name = ticket.requester.name if ticket.requester else None
    values = {
        "ticket.number": str(ticket.number),
        "ticket.subject": ticket.subject,
        "requester.name": name or "",
        "requester.first_name": (name or "").split(" ")[0],
        "agent.name": agent_name or "",
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], body)


def apply_canned_response(
    ticket: Ticket,
    macro: CannedResponse,
    agent: Actor,
    at: datetime,
    *,
    message_id: UUID,
    agent_name: str | None = None,
) -> None:
    """Reply with the rendered template, then make the macro's other changes."""
    ticket.reply(agent, render(macro.body, ticket, agent_name), message_id=message_id, at=at)
    if macro.priority is not None:
        ticket.change_priority(macro.priority, agent, at)
    if macro.add_tags or macro.remove_tags:
        removed = {t.strip().lower() for t in macro.remove_tags}
        kept = [t for t in ticket.tags if t not in removed]
        ticket.set_tags([*kept, *macro.add_tags], agent, at)
    if macro.status is not None:  # last: a macro that closes must not block its own changes
        ticket.move_to(macro.status, agent, at)
