"""The envelope: construction, validation, serialisation and Kafka key/headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from helpdesk_contracts import (
    Actor,
    ActorKind,
    CustomerMessageReceived,
    Event,
    EventEnvelope,
    FeedbackReceived,
    SlaClockCancelled,
    SlaMetric,
    SurveyKind,
    TicketClosed,
    TicketSubmitted,
    kafka_headers,
    kafka_key,
    parse_envelope,
)
from helpdesk_contracts.values import Requester

pytestmark = pytest.mark.unit

TICKET_ID = UUID("60cca9ec-18d7-42fc-bee4-3a1afdd863cf")
AGENT = Actor(kind=ActorKind.AGENT, id="agent_017")


def closed(**overrides: object) -> EventEnvelope[TicketClosed]:
    fields: dict[str, object] = {
        "tenant_id": "northwind",
        "producer": "ticketing",
        "aggregate_id": TICKET_ID,
        "aggregate_version": 3,
    } | overrides
    return EventEnvelope.new(TicketClosed(closed_by=AGENT, reason="done"), **fields)  # type: ignore[arg-type]


def submitted() -> TicketSubmitted:
    return TicketSubmitted(
        source="webshop",
        external_id="ORD-1",
        subject="Broken",
        description="",
        requester=Requester(customer_id="cus_1"),
    )


class TestNew:
    def test_takes_type_and_version_from_the_payload(self) -> None:
        envelope = closed()
        assert (envelope.event_type, envelope.schema_version) == ("TicketClosed", 1)
        assert type(envelope) is EventEnvelope[TicketClosed]

    def test_defaults_ids_and_time(self) -> None:
        before = datetime.now(UTC)
        envelope = closed()
        assert before <= envelope.occurred_at <= datetime.now(UTC)
        assert envelope.event_id != envelope.correlation_id
        assert envelope.causation_id is None

    def test_keeps_given_ids(self) -> None:
        event_id, correlation_id, causation_id = uuid4(), uuid4(), uuid4()
        envelope = closed(
            event_id=event_id, correlation_id=correlation_id, causation_id=causation_id
        )
        assert (envelope.event_id, envelope.correlation_id, envelope.causation_id) == (
            event_id,
            correlation_id,
            causation_id,
        )

    def test_is_immutable(self) -> None:
        envelope = closed()
        with pytest.raises(ValidationError):
            envelope.tenant_id = "other"  # type: ignore[misc]


class TestValidation:
    def test_normalises_occurred_at_to_utc(self) -> None:
        cest = timezone(timedelta(hours=2))
        envelope = closed(occurred_at=datetime(2025, 6, 1, 12, 0, tzinfo=cest))
        assert envelope.occurred_at == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
        assert envelope.occurred_at.utcoffset() == timedelta(0)
        assert b'"occurred_at":"2025-06-01T10:00:00Z"' in envelope.to_json()

    def test_refuses_naive_occurred_at(self) -> None:
        with pytest.raises(ValidationError, match="timezone"):
            closed(occurred_at=datetime(2025, 6, 1, 12, 0))

    @pytest.mark.parametrize("tenant", ["", "Northwind", "north wind", "-x", "a" * 64, "ä"])
    def test_refuses_bad_tenant_ids(self, tenant: str) -> None:
        with pytest.raises(ValidationError, match="tenant_id"):
            closed(tenant_id=tenant)

    @pytest.mark.parametrize("tenant", ["a", "northwind", "acme-eu_2", "0" * 63])
    def test_accepts_good_tenant_ids(self, tenant: str) -> None:
        assert closed(tenant_id=tenant).tenant_id == tenant

    def test_refuses_aggregate_version_without_aggregate_id(self) -> None:
        with pytest.raises(ValidationError, match="aggregate_version requires aggregate_id"):
            EventEnvelope.new(
                submitted(), tenant_id="northwind", producer="webshop", aggregate_version=1
            )

    def test_ticket_events_need_the_ticket_id_and_version(self) -> None:
        with pytest.raises(ValidationError, match="needs aggregate_id"):
            closed(aggregate_id=None, aggregate_version=None)

    @pytest.mark.parametrize("producer", ["", "x" * 101])
    def test_refuses_bad_producer(self, producer: str) -> None:
        with pytest.raises(ValidationError, match="producer"):
            closed(producer=producer)

    def test_refuses_an_event_type_that_does_not_match_the_payload(self) -> None:
        data = json.loads(closed().to_json())
        with pytest.raises(ValidationError, match="do not match the payload"):
            EventEnvelope[TicketClosed].model_validate(data | {"event_type": "TicketSolved"})

    def test_ignores_unknown_fields(self) -> None:
        envelope = closed()
        data = json.loads(envelope.to_json())
        data["trace_flags"] = 1
        data["payload"]["closed_after_days"] = 4
        assert parse_envelope(data) == envelope


class TestJson:
    def test_round_trips(self) -> None:
        envelope = closed(causation_id=uuid4())
        parsed = parse_envelope(envelope.to_json())
        assert parsed == envelope
        assert type(parsed) is EventEnvelope[TicketClosed]
        assert parsed.to_json() == envelope.to_json()

    def test_round_trips_from_text_and_mapping(self) -> None:
        envelope = closed()
        assert parse_envelope(envelope.to_json().decode()) == envelope
        assert parse_envelope(json.loads(envelope.to_json())) == envelope

    def test_serialises_the_payload_of_an_unparametrised_envelope(self) -> None:
        envelope = closed()
        loose = EventEnvelope[Event].model_construct(**dict(envelope))
        assert json.loads(loose.to_json()) == json.loads(envelope.to_json())


class TestKafka:
    def test_ticket_events_are_keyed_by_ticket_id(self) -> None:
        assert kafka_key(closed()) == str(TICKET_ID).encode()

    def test_intake_events_are_keyed_by_external_id(self) -> None:
        envelope = EventEnvelope.new(submitted(), tenant_id="northwind", producer="webshop")
        assert kafka_key(envelope) == b"ORD-1"

    def test_customer_messages_are_keyed_by_their_thread(self) -> None:
        message = CustomerMessageReceived(
            source="mail-gateway",
            external_thread_id="<root@mail.example.com>",
            external_message_id="<reply-2@mail.example.com>",
            subject="Re: Broken",
            body="Still broken.",
            requester=Requester(customer_id="cus_1"),
        )
        envelope = EventEnvelope.new(message, tenant_id="northwind", producer="mail-gateway")
        assert kafka_key(envelope) == b"<root@mail.example.com>"

    def test_feedback_is_keyed_by_ticket_then_feedback_id(self) -> None:
        feedback_id = uuid4()
        about_ticket = FeedbackReceived(
            feedback_id=feedback_id,
            ticket_id=TICKET_ID,
            customer_id="cus_1",
            survey=SurveyKind.NPS,
            score=9,
            source="survey-mailer",
        )
        general = about_ticket.model_copy(update={"ticket_id": None})
        for payload, key in [(about_ticket, TICKET_ID), (general, feedback_id)]:
            envelope = EventEnvelope.new(payload, tenant_id="northwind", producer="feedback")
            assert kafka_key(envelope) == str(key).encode()

    def test_sla_events_are_keyed_by_their_ticket(self) -> None:
        cancelled = SlaClockCancelled(
            ticket_id=TICKET_ID, ticket_number=7, clock_id=uuid4(), metric=SlaMetric.RESOLUTION,
            cancelled_at=datetime(2025, 3, 3, 12, tzinfo=timezone(timedelta(hours=3))),
            reason="merged",
        )  # fmt: skip
        envelope = EventEnvelope.new(cancelled, tenant_id="northwind", producer="sla")
        assert kafka_key(envelope) == str(TICKET_ID).encode()
        assert envelope.payload.cancelled_at == datetime(2025, 3, 3, 9, tzinfo=UTC)
        assert envelope.payload.cancelled_at.tzinfo is UTC

    def test_headers_mirror_the_envelope(self) -> None:
        envelope = closed()
        assert dict(kafka_headers(envelope)) == {
            "event_type": b"TicketClosed",
            "schema_version": b"1",
            "tenant_id": b"northwind",
            "event_id": str(envelope.event_id).encode(),
            "correlation_id": str(envelope.correlation_id).encode(),
        }


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = {closed().event_id for _ in range(1000)}
    assert len(ids) == 1000
    assert {i.version for i in ids} == {4}
