"""The event registry and the topic registry agree and are unambiguous."""

from __future__ import annotations

from typing import ClassVar

import pytest

from helpdesk_contracts import (
    EVENT_TYPES,
    TOPICS,
    ContractError,
    DlqHeader,
    Event,
    TicketClosed,
    TicketEvent,
    TicketOpened,
    TicketSubmitted,
    Watermark,
    dead_letter_topic,
    event_class,
    registered_events,
    topic_for,
)
from helpdesk_contracts.topics import COMPANY_SYSTEMS

pytestmark = pytest.mark.unit

EXPECTED_EVENT_TYPES = {
    "TicketSubmitted",
    "NegativeFeedbackFlagged",
    "CustomerAtRisk",
    "CustomerMessageReceived",
    "TicketOpened",
    "ResponseSent",
    "CustomerReplied",
    "InternalNoteAdded",
    "TicketAssigned",
    "TicketPriorityChanged",
    "TicketStatusChanged",
    "TicketSolved",
    "TicketReopened",
    "TicketClosed",
    "TicketTypeChanged",
    "TicketTagsChanged",
    "TicketFieldsChanged",
    "TicketFollowersChanged",
    "TicketMerged",
    "DuplicateMerged",
    "LinkedToProblem",
    "IncidentLinked",
    "TicketOrganisationChanged",
    "CustomerRegistered",
    "CustomerProfileChanged",
    "CustomerMerged",
    "CustomerErased",
    "DuplicateCustomerMerged",
    "OrganisationRegistered",
    "OrganisationProfileChanged",
    "CustomerUpserted",
    "OrganisationUpserted",
    "FeedbackReceived",
    "SurveyRequested",
    "SlaClockStarted",
    "SlaClockPaused",
    "SlaClockResumed",
    "SlaClockRetargeted",
    "SlaWarning",
    "SlaBreached",
    "SlaAchieved",
    "SlaClockStopped",
    "SlaClockCancelled",
    "SlaVerdictRevised",
    "Watermark",
    "TenantChanged",
}


def test_every_event_type_is_registered_once() -> None:
    assert set(EVENT_TYPES) == EXPECTED_EVENT_TYPES
    keys = [(event.event_type, event.schema_version) for event in registered_events()]
    assert len(keys) == len(set(keys)) == len(EXPECTED_EVENT_TYPES)
    for name, event in EVENT_TYPES.items():
        assert event.event_type == name
        assert event_class(name, event.schema_version) is event


def test_every_event_type_is_in_exactly_one_topic() -> None:
    listed = [event for topic in TOPICS.values() for event in topic.event_types]
    assert sorted(e.event_type for e in listed) == sorted(EXPECTED_EVENT_TYPES)
    for event in listed:
        assert event in topic_for(event.event_type).event_types


def test_topics() -> None:
    assert topic_for("TicketSubmitted").name == "ticketing.intake.v1"
    assert topic_for("TicketClosed").name == "ticketing.tickets.v2"
    assert topic_for("FeedbackReceived").name == "feedback.received.v1"
    assert topic_for("SlaBreached").name == "sla.events.v1"
    assert topic_for("TenantChanged").name == "ticketing.tenants.v1"
    assert {topic.partitions for topic in TOPICS.values()} == {3, 12, 24}
    assert [t.name for t in TOPICS.values() if t.compacted] == ["ticketing.tenants.v1"]
    assert all(topic.compatibility == "backward" for topic in TOPICS.values())
    with pytest.raises(ContractError, match="no topic carries"):
        topic_for("TicketExploded")


def test_the_ticket_topic_carries_only_ticket_events() -> None:
    tickets = TOPICS["ticketing.tickets.v2"]
    others = [e for e in tickets.event_types if not issubclass(e, TicketEvent)]
    assert others == [Watermark]  # the one record about the partition, not about a ticket
    assert not issubclass(TicketSubmitted, TicketEvent)


def test_registries_are_read_only() -> None:
    with pytest.raises(TypeError):
        EVENT_TYPES["X"] = TicketOpened  # type: ignore[index]
    with pytest.raises(TypeError):
        TOPICS["x"] = TOPICS["ticketing.intake.v1"]  # type: ignore[index]


def test_a_second_class_for_the_same_type_and_version_is_refused() -> None:
    with pytest.raises(TypeError, match="TicketClosed v1 is defined twice"):

        class Impostor(Event):
            event_type: ClassVar[str] = "TicketClosed"

    assert EVENT_TYPES["TicketClosed"] is TicketClosed


def test_a_subclass_of_an_event_must_declare_a_new_version() -> None:
    with pytest.raises(TypeError, match="defined twice"):

        class Extended(TicketClosed):
            pass


def test_event_type_names_are_checked() -> None:
    with pytest.raises(TypeError, match="must be a name"):

        class Spaced(Event):
            event_type: ClassVar[str] = "ticket closed"


def test_unknown_lookups_are_contract_errors() -> None:
    with pytest.raises(ContractError, match="unknown event_type 'Nope'"):
        event_class("Nope", 1)
    with pytest.raises(ContractError, match="unsupported schema_version 2 of TicketOpened"):
        event_class("TicketOpened", 2)


def test_dead_letters() -> None:
    assert dead_letter_topic("ticketing.tickets.v2") == "ticketing.tickets.v2.dlq"
    assert [header.value for header in DlqHeader] == [
        "dlq-reason",
        "dlq-error-type",
        "dlq-consumer",
        "dlq-source-topic",
        "dlq-source-partition",
        "dlq-source-offset",
        "dlq-failed-at",
    ]


def test_the_topics_other_systems_fill_keep_their_records_a_bounded_time() -> None:
    """They carry personal data in plain text (the privacy issue): Kafka forgets it."""
    from_outside = [t for t in TOPICS.values() if COMPANY_SYSTEMS in t.producers]
    assert {t.name for t in from_outside} >= {"ticketing.intake.v1", "ticketing.directory-sync.v1"}
    for topic in from_outside:
        if topic.name == "feedback.received.v1":
            continue  # also the feedback service's own topic: decided with it (issue 14)
        assert topic.retention_days is not None, topic.name
        assert topic.retention_days <= 7, topic.name
