"""The Kafka topics: which events each carries, how it is keyed, who writes and reads it.

Dead letters: a consumer that cannot decode, validate or (after bounded retries) handle a
message publishes it to `dead_letter_topic(topic)` ("<topic>.dlq") with the original key,
value and headers, plus the `DlqHeader` headers, then commits and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from helpdesk_contracts.directory import (
    CustomerErased,
    CustomerMerged,
    CustomerProfileChanged,
    CustomerRegistered,
    CustomerUpserted,
    DuplicateCustomerMerged,
    OrganisationProfileChanged,
    OrganisationRegistered,
    OrganisationUpserted,
)
from helpdesk_contracts.envelope import Event, registered_events
from helpdesk_contracts.errors import ContractError
from helpdesk_contracts.feedback import (
    CustomerAtRisk,
    FeedbackReceived,
    NegativeFeedbackFlagged,
    SurveyRequested,
)
from helpdesk_contracts.intake import CustomerMessageReceived, TicketSubmitted
from helpdesk_contracts.sla import (
    SlaAchieved,
    SlaBreached,
    SlaClockCancelled,
    SlaClockPaused,
    SlaClockResumed,
    SlaClockRetargeted,
    SlaClockStarted,
    SlaClockStopped,
    SlaVerdictRevised,
    SlaWarning,
)
from helpdesk_contracts.tenants import TenantChanged
from helpdesk_contracts.ticketing import (
    CustomerReplied,
    DuplicateMerged,
    IncidentLinked,
    InternalNoteAdded,
    LinkedToProblem,
    ResponseSent,
    TicketAssigned,
    TicketClosed,
    TicketFieldsChanged,
    TicketFollowersChanged,
    TicketMerged,
    TicketOpened,
    TicketOrganisationChanged,
    TicketPriorityChanged,
    TicketReopened,
    TicketSolved,
    TicketStatusChanged,
    TicketTagsChanged,
    TicketTypeChanged,
    Watermark,
)

PLAIN_TEXT_RETENTION_DAYS = 7
"""Intake topics carry what other systems send, personal data in plain text: a week lets a
consumer that was down for days catch up, and no longer (the privacy issue: erasure)."""

COMPANY_SYSTEMS = "company-systems"
"""Producer name standing for any other system of the company that publishes to us."""


@dataclass(frozen=True, slots=True)
class Topic:
    """A Kafka topic and its contract."""

    name: str
    description: str
    key: str
    event_types: tuple[type[Event], ...]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    compatibility: Literal["backward", "none"]
    partitions: int
    retention_days: int | None = None
    """How long Kafka keeps a record (and its dead letters), when bounded: the topics that
    other systems fill with personal data in plain text keep it only this long. None: the
    broker's default (the events are also kept, sealed, in their producer's event log)."""
    compacted: bool = False
    """Kafka keeps the latest record of each key (cleanup.policy=compact), for ever: the
    topic is a table of current states, read from the beginning."""
    sealed: bool = False
    """The personal fields of its events (`Event.personal_fields`) are sealed with their
    data subject's key (helpdesk_contracts.pii): erasing the subject erases them here too."""


_TOPICS = (
    Topic(
        name="ticketing.intake.v1",
        description="Requests from other company systems to open a ticket.",
        key=(
            "payload.external_id for TicketSubmitted, payload.external_thread_id for "
            "CustomerMessageReceived (the publisher's own ids)"
        ),
        event_types=(TicketSubmitted, CustomerMessageReceived),
        # notifications: the customers' mail it receives (CustomerMessageReceived).
        producers=(COMPANY_SYSTEMS, "notifications"),
        consumers=("ticketing",),
        compatibility="backward",
        partitions=12,
        retention_days=PLAIN_TEXT_RETENTION_DAYS,
    ),
    Topic(
        name="ticketing.tickets.v2",
        description="Every change to every ticket, in order per ticket; personal data sealed.",
        key="aggregate_id (the ticket id); Watermark: none, written to each partition",
        event_types=(
            TicketOpened,
            ResponseSent,
            CustomerReplied,
            InternalNoteAdded,
            TicketAssigned,
            TicketPriorityChanged,
            TicketStatusChanged,
            TicketSolved,
            TicketReopened,
            TicketClosed,
            TicketTypeChanged,
            TicketTagsChanged,
            TicketFieldsChanged,
            TicketFollowersChanged,
            TicketMerged,
            DuplicateMerged,
            LinkedToProblem,
            IncidentLinked,
            TicketOrganisationChanged,
            Watermark,
        ),
        producers=("ticketing",),
        consumers=("sla", "feedback", "notifications"),
        compatibility="backward",
        partitions=24,
        sealed=True,
    ),
    Topic(
        name="ticketing.directory.v1",
        description="Every change to the customer directory: customers and organisations.",
        key="aggregate_id (the customer's or the organisation's stream)",
        event_types=(
            CustomerRegistered,
            CustomerProfileChanged,
            CustomerMerged,
            DuplicateCustomerMerged,
            CustomerErased,
            OrganisationRegistered,
            OrganisationProfileChanged,
        ),
        producers=("ticketing",),
        consumers=("notifications", "feedback"),
        compatibility="backward",
        partitions=12,
        sealed=True,
    ),
    Topic(
        name="ticketing.directory-sync.v1",
        description="Customers and organisations from other company systems (a CRM).",
        key="payload.customer_id for CustomerUpserted, payload.organisation_id for"
        " OrganisationUpserted",
        event_types=(CustomerUpserted, OrganisationUpserted),
        producers=(COMPANY_SYSTEMS,),
        consumers=("ticketing",),
        compatibility="backward",
        partitions=12,
        retention_days=PLAIN_TEXT_RETENTION_DAYS,
    ),
    Topic(
        name="ticketing.tenants.v1",
        description="The tenants the deployment serves: each one's latest registration.",
        key="aggregate_id (tenant_stream of the tenant id)",
        event_types=(TenantChanged,),
        producers=("ticketing",),
        consumers=("sla", "feedback", "notifications"),
        compatibility="backward",
        partitions=3,
        compacted=True,
    ),
    Topic(
        name="sla.events.v1",
        description="The SLA clocks of every ticket: started, paused, warned, breached, achieved.",
        key="payload.ticket_id",
        event_types=(
            SlaClockStarted,
            SlaClockPaused,
            SlaClockResumed,
            SlaClockRetargeted,
            SlaWarning,
            SlaBreached,
            SlaAchieved,
            SlaClockStopped,
            SlaClockCancelled,
            SlaVerdictRevised,
        ),
        producers=("sla",),
        consumers=("ticketing", "notifications", "feedback"),
        compatibility="backward",
        partitions=24,
    ),
    Topic(
        name="feedback.received.v1",
        description="Customers' survey answers (CSAT, NPS, CES).",
        key="payload.ticket_id, else payload.feedback_id",
        event_types=(FeedbackReceived,),
        producers=("feedback", COMPANY_SYSTEMS),
        consumers=("feedback",),
        compatibility="backward",
        partitions=12,
        # Comments are the customers' words in plain text (other systems publish here).
        retention_days=PLAIN_TEXT_RETENTION_DAYS,
    ),
    Topic(
        name="feedback.surveys.v1",
        description="Survey invitations for the notifications service to deliver.",
        key="payload.ticket_id, else payload.survey_id",
        event_types=(SurveyRequested,),
        producers=("feedback",),
        consumers=("notifications",),
        compatibility="backward",
        partitions=12,
    ),
    Topic(
        name="feedback.events.v1",
        description="What the feedback service concludes: bad feedback flagged, customers at risk.",
        key="payload.ticket_id, else payload.customer_id",
        event_types=(NegativeFeedbackFlagged, CustomerAtRisk),
        producers=("feedback",),
        # ticketing: a solved ticket whose flag says `reopen` is reopened.
        consumers=("notifications", "ticketing"),
        compatibility="backward",
        partitions=12,
    ),
)

TOPICS: Mapping[str, Topic] = MappingProxyType({topic.name: topic for topic in _TOPICS})
"""Topic name -> Topic."""

RETIRED_TOPICS: Mapping[str, str] = MappingProxyType(
    {"ticketing.tickets.v1": "ticketing.tickets.v2"}
)
"""Retired topic -> the version that replaced it. `ticketing.tickets.v1` carried personal
data in plain text: nothing publishes to it since 2.0.0, a deployment keeps its records only
PLAIN_TEXT_RETENTION_DAYS more, and it can be deleted once no one reads it."""


def _index_by_event_type() -> dict[str, Topic]:
    # Routing relies on each event type living in exactly one topic: check at import.
    index: dict[str, Topic] = {}
    for topic in _TOPICS:
        for event in topic.event_types:
            if index.setdefault(event.event_type, topic) is not topic:
                raise RuntimeError(f"{event.event_type} is listed in two topics")
    unlisted = [event.event_type for event in registered_events() if event.event_type not in index]
    if unlisted:
        raise RuntimeError(f"event types in no topic: {', '.join(unlisted)}")
    return index


_TOPIC_OF_EVENT = _index_by_event_type()


def topic_for(event_type: str) -> Topic:
    """The one topic an event type is published to."""
    try:
        return _TOPIC_OF_EVENT[event_type]
    except KeyError:
        raise ContractError(f"no topic carries event_type {event_type!r}") from None


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return f"{topic}.dlq"


class DlqHeader(StrEnum):
    """Headers a consumer adds when it dead-letters a message (values are UTF-8 text)."""

    REASON = "dlq-reason"
    """What went wrong, e.g. the ContractError message (truncated to a few KiB)."""
    ERROR_TYPE = "dlq-error-type"
    """What kind of failure: invalid, oversize, unexpected_event_type, rejected or failed."""
    CONSUMER = "dlq-consumer"
    """The consumer group that gave up on the message."""
    SOURCE_TOPIC = "dlq-source-topic"
    SOURCE_PARTITION = "dlq-source-partition"
    SOURCE_OFFSET = "dlq-source-offset"
    FAILED_AT = "dlq-failed-at"
    """When it was dead-lettered: RFC 3339, UTC."""
