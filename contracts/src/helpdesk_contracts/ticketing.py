"""Ticket events: the history of one ticket, published by the ticketing service.

The envelope's `aggregate_id` is the ticket id and `aggregate_version` the event's position
in that ticket's history, so payloads do not repeat the ticket id. Status moves between
new/open/pending/on_hold with `TicketStatusChanged`; solving, reopening (back to open) and
closing have their own events.
"""

from __future__ import annotations

from typing import ClassVar, Self
from uuid import UUID

from pydantic import Field, model_validator

from helpdesk_contracts.envelope import MAX_BIGINT, Event, UtcDatetime
from helpdesk_contracts.pii import Sealed
from helpdesk_contracts.values import (
    Actor,
    Attachments,
    Body,
    Channel,
    CustomFields,
    Description,
    ExternalRef,
    Identifier,
    Organisation,
    Priority,
    Reason,
    Requester,
    Subject,
    Tags,
    TicketStatus,
    TicketType,
)

_MESSAGE = ("body", "attachments.*.filename")
"""A message's personal fields: it is sealed with the key of the ticket's requester."""


class TicketEvent(Event):
    """Base of the ticket events: the envelope must name the ticket and the version."""

    requires_aggregate: ClassVar[bool] = True


class TicketOpened(TicketEvent):
    """A ticket was opened (status new)."""

    event_type = "TicketOpened"

    personal_fields = (
        "subject", "description", "requester.name", "requester.email", "requester.phone",
        "attachments.*.filename",
    )  # fmt: skip

    number: int = Field(ge=1, le=MAX_BIGINT)
    """Human-readable ticket number, unique per tenant."""
    subject: Subject | Sealed
    description: Description | Sealed
    requester: Requester
    """When the requester is a customer of the directory (by customer id, an external id,
    an email or a phone), `customer_id` is that customer's and the name, email, phone,
    preferred channel and language come from the directory where it knows them."""
    priority: Priority
    channel: Channel
    type: TicketType
    tags: Tags = ()
    custom_fields: CustomFields = Field(default_factory=dict)
    organisation: Organisation | None = None
    """The directory's organisation of the customer (else of the email's domain) with its
    tier and account manager; else what the submitter sent."""
    external_ref: ExternalRef | None = None
    """The submission in another system this ticket was opened from, if any."""
    opened_by: Actor
    follow_up_of: UUID | None = None
    """The closed ticket this one follows up (the customer wrote again after closing)."""
    attachments: Attachments = ()
    """Files of the message that opened the ticket."""

    def data_subject(self) -> str:
        return self.requester.customer_id


class ResponseSent(TicketEvent):
    """An agent sent a public reply to the requester."""

    event_type = "ResponseSent"
    personal_fields = _MESSAGE

    message_id: UUID
    agent_id: Identifier
    body: Body | Sealed
    channel: Channel
    attachments: Attachments = ()


class CustomerReplied(TicketEvent):
    """The customer wrote to the ticket."""

    event_type = "CustomerReplied"
    personal_fields = _MESSAGE

    message_id: UUID
    customer_id: Identifier
    body: Body | Sealed
    channel: Channel
    attachments: Attachments = ()


class InternalNoteAdded(TicketEvent):
    """An agent added a note that the customer does not see."""

    event_type = "InternalNoteAdded"
    personal_fields = _MESSAGE

    note_id: UUID
    agent_id: Identifier
    body: Body | Sealed
    attachments: Attachments = ()


class TicketAssigned(TicketEvent):
    """The ticket's assignee and/or group changed (both None: unassigned)."""

    event_type = "TicketAssigned"

    assignee_id: Identifier | None = None
    group_id: Identifier | None = None
    previous_assignee_id: Identifier | None = None
    previous_group_id: Identifier | None = None
    assigned_by: Actor


class TicketPriorityChanged(TicketEvent):
    """The ticket's priority changed."""

    event_type = "TicketPriorityChanged"

    previous: Priority
    priority: Priority
    changed_by: Actor


_LIFECYCLE = frozenset({TicketStatus.SOLVED, TicketStatus.CLOSED})


class TicketStatusChanged(TicketEvent):
    """The status moved between new, open, pending and on_hold."""

    event_type = "TicketStatusChanged"

    previous: TicketStatus
    status: TicketStatus
    changed_by: Actor

    @model_validator(mode="after")
    def _not_a_lifecycle_change(self) -> Self:
        if {self.previous, self.status} & _LIFECYCLE:
            raise ValueError(
                "solved and closed are left and entered only with "
                "TicketSolved, TicketReopened and TicketClosed"
            )
        return self


class TicketSolved(TicketEvent):
    """The ticket was solved (status solved)."""

    event_type = "TicketSolved"

    solved_by: Actor
    resolution: Reason | None = None


class TicketReopened(TicketEvent):
    """A solved ticket was reopened (status open)."""

    event_type = "TicketReopened"

    reopened_by: Actor
    reason: Reason | None = None


class TicketClosed(TicketEvent):
    """The ticket was closed for good (status closed); it cannot be reopened."""

    event_type = "TicketClosed"

    closed_by: Actor
    reason: Reason | None = None


class TicketTypeChanged(TicketEvent):
    """The ticket's type changed (question, incident, problem, task)."""

    event_type = "TicketTypeChanged"

    previous: TicketType
    type: TicketType
    changed_by: Actor


class TicketTagsChanged(TicketEvent):
    """The ticket's tags changed; `tags` is the whole new set."""

    event_type = "TicketTagsChanged"

    previous: Tags
    tags: Tags
    changed_by: Actor


class TicketFieldsChanged(TicketEvent):
    """The ticket's custom fields changed; `custom_fields` is the whole new map."""

    event_type = "TicketFieldsChanged"

    previous: CustomFields
    custom_fields: CustomFields
    changed_by: Actor


class TicketFollowersChanged(TicketEvent):
    """Agents following the ticket changed; `followers` is the whole new set."""

    event_type = "TicketFollowersChanged"

    previous: tuple[Identifier, ...]
    followers: tuple[Identifier, ...]
    changed_by: Actor


class TicketMerged(TicketEvent):
    """This ticket was a duplicate and was merged into another (a TicketClosed follows)."""

    event_type = "TicketMerged"

    into_ticket_id: UUID
    into_number: int = Field(ge=1, le=MAX_BIGINT)
    merged_by: Actor


class DuplicateMerged(TicketEvent):
    """A duplicate ticket was merged into this one; its history stays on its own stream."""

    event_type = "DuplicateMerged"

    duplicate_ticket_id: UUID
    duplicate_number: int = Field(ge=1, le=MAX_BIGINT)
    merged_by: Actor


class LinkedToProblem(TicketEvent):
    """This incident was linked to a problem ticket; solving the problem solves it."""

    event_type = "LinkedToProblem"

    problem_id: UUID
    linked_by: Actor


class IncidentLinked(TicketEvent):
    """An incident was linked to this problem ticket."""

    event_type = "IncidentLinked"

    incident_id: UUID
    linked_by: Actor


class TicketOrganisationChanged(TicketEvent):
    """The ticket's organisation changed (its tier or account manager in the directory, or
    the organisation itself): the SLA service re-targets the ticket's clocks by tier."""

    event_type = "TicketOrganisationChanged"

    previous: Organisation | None = None
    organisation: Organisation | None = None
    changed_by: Actor


class Watermark(Event):
    """A promise about one partition: every ticket event that occurred at or before `up_to`
    and is on this partition was published before this record.

    Ticketing sends one to every partition of `ticketing.tickets.v1` about once a second,
    also when nothing else happens, with no key (it is written to `partition` directly) and
    the reserved tenant id `system`. A consumer that reaches it on partition `partition` has
    therefore read every event of that partition that occurred up to `up_to`: the SLA
    service waits for it before it declares a breach, so that neither its own lag nor
    ticketing's can make a breach false. `up_to` never goes back on a partition. An event
    stamped earlier than a watermark already sent but published after it is late (an intake
    message back-dated to when the customer wrote, say): consumers handle it as such.
    Consumers that do not need watermarks skip them, like any event type they do not handle.
    """

    event_type = "Watermark"

    partition: int = Field(ge=0, le=100_000)
    partitions: int = Field(ge=1, le=100_000)
    """How many partitions the topic had when it was sent (keys are spread by Kafka's
    default partitioner over that many)."""
    up_to: UtcDatetime
