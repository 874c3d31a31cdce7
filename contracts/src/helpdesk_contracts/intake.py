"""Intake: how another company system asks the helpdesk to open a ticket.

Publish `TicketSubmitted` to `ticketing.intake.v1`, keyed by `external_id`, with no
`aggregate_id` in the envelope. The ticketing service opens at most one ticket per
(tenant_id, source, external_id): re-sending a submission (after a timeout, a retry or a
replay) is safe and opens no second ticket. The ticket it opens carries
`external_ref = {source, external_id}` in its `TicketOpened` event.
"""

from __future__ import annotations

from pydantic import Field

from helpdesk_contracts.envelope import Event
from helpdesk_contracts.values import (
    Channel,
    CustomFields,
    Description,
    Identifier,
    Organisation,
    Priority,
    Requester,
    Subject,
    SystemName,
    Tags,
    TicketType,
)


class TicketSubmitted(Event):
    """Another system asks for a ticket to be opened (idempotent per source and external_id)."""

    event_type = "TicketSubmitted"

    source: SystemName
    """Name of the publishing system; (tenant, source, external_id) identifies a submission."""
    external_id: Identifier
    """The publisher's own id for this request, e.g. its order or case number."""
    subject: Subject
    description: Description
    requester: Requester
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.API
    type: TicketType = TicketType.QUESTION
    tags: Tags = ()
    custom_fields: CustomFields = Field(default_factory=dict)
    organisation: Organisation | None = None

    def partition_key(self) -> str:
        """Intake events are keyed by the publisher's external id."""
        return self.external_id
