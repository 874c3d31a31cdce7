"""Intake: how another company system asks the helpdesk to open a ticket or add to one.

Publish `TicketSubmitted` to `ticketing.intake.v1`, keyed by `external_id`, with no
`aggregate_id` in the envelope. The ticketing service opens at most one ticket per
(tenant_id, source, external_id): re-sending a submission (after a timeout, a retry or a
replay) is safe and opens no second ticket. The ticket it opens carries
`external_ref = {source, external_id}` in its `TicketOpened` event.

Publish `CustomerMessageReceived`, keyed by `external_thread_id`, for every message a
customer sends in a conversation the publisher tracks (a mail thread, a chat): the first
message of a thread opens a ticket, later ones are added to it as the customer's replies,
and a message to a thread whose ticket is closed opens a follow-up ticket. Each message is
applied once per (tenant_id, source, external_message_id).
"""

from __future__ import annotations

from pydantic import Field

from helpdesk_contracts.envelope import Event
from helpdesk_contracts.values import (
    Attachments,
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


class CustomerMessageReceived(Event):
    """A customer wrote in a conversation another system tracks (mail gateway, chat, website)."""

    event_type = "CustomerMessageReceived"

    source: SystemName
    """The publishing system; threads and messages are identified within it."""
    external_thread_id: Identifier
    """The conversation, e.g. the root Message-ID of a mail thread; one ticket per thread."""
    external_message_id: Identifier
    """This message; a re-sent message with the same id is applied once."""
    subject: Subject
    """Used when the message opens a ticket."""
    body: Description
    requester: Requester
    channel: Channel = Channel.EMAIL
    priority: Priority = Priority.NORMAL
    tags: Tags = ()
    organisation: Organisation | None = None
    attachments: Attachments = ()
    """Files of the message, uploaded first to the ticketing API (`POST /v1/attachments`);
    each must be one of this tenant's uploads, with the size and checksum it answered."""

    def partition_key(self) -> str:
        """Keyed by thread, so one conversation's messages arrive in order."""
        return self.external_thread_id
