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

An outside publisher (a system not run by the company's own teams) gets a topic of its own,
`publisher_intake_topic(name)`, which only it may write to, and reads why a message was
refused on `rejections_topic(that topic)`.
"""

from __future__ import annotations

import re
from uuid import UUID

from pydantic import Field

from helpdesk_contracts.envelope import Event, UtcDatetime
from helpdesk_contracts.values import (
    Attachments,
    Channel,
    ContractModel,
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
    ticket_id: UUID | None = None
    """The ticket the message answers, when the publisher knows it (a reply to one of the
    helpdesk's own emails, whose reply address names the ticket): a thread not seen before
    continues that ticket instead of opening one."""

    def partition_key(self) -> str:
        """Keyed by thread, so one conversation's messages arrive in order."""
        return self.external_thread_id


def publisher_intake_topic(publisher: str) -> str:
    """The intake topic of one outside publisher: the same events, keys and schemas as
    `ticketing.intake.v1`, but only that publisher's Kafka user may write to it, so a
    message's topic says who sent it. Its tenants are the ones ticketing registered for it
    (`python -m ticketing publishers allow <publisher> <tenant>`)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", publisher):
        raise ValueError(f"{publisher!r} is not a publisher name (a-z, 0-9, '-', '_')")
    return f"ticketing.intake.v1.{publisher}"


def rejections_topic(topic: str) -> str:
    """Where a publisher reads why its messages on `topic` were refused (IntakeRejection):
    its own topic, so it never needs to read our dead letters."""
    return f"{topic}.rejections"


class IntakeRejection(ContractModel):
    """A message refused, and why: the value of a record on the publisher's rejections
    topic, keyed as the message was. It does not repeat the message's content."""

    event_id: UUID | None = None
    """The refused envelope's event_id, when it had a readable one."""
    event_type: str | None = None
    tenant_id: str | None = None
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str
    """invalid, oversize, unexpected_event_type, rejected (a business rule) or failed."""
    reason: str
    rejected_at: UtcDatetime
