"""What a publisher is told of a refused message: which one and why, never its content."""

from aiokafka.structs import ConsumerRecord

from helpdesk_contracts import IntakeRejection, kafka_headers
from helpdesk_runtime.deadletters import DeadLetter, rejection_message

from support.events import submitted


def _record(value: bytes, headers: list[tuple[str, bytes]]) -> "ConsumerRecord[bytes, bytes]":
    return ConsumerRecord(
        topic="ticketing.intake.v1.crm", partition=3, offset=41, timestamp=0,
        timestamp_type=0, key=b"p-2", value=value, checksum=None, serialized_key_size=3,
        serialized_value_size=len(value), headers=headers,
    )  # fmt: skip


def test_a_rejection_names_the_message_and_the_reason_on_the_publishers_topic() -> None:
    envelope = submitted("p-2", tenant="globex", source="crm")
    letter = DeadLetter(
        _record(envelope.to_json(), kafka_headers(envelope)), "not its tenant", "rejected"
    )
    message = rejection_message(letter)
    assert message.topic == "ticketing.intake.v1.crm.rejections"
    assert message.key == b"p-2"
    assert message.value is not None
    told = IntakeRejection.model_validate_json(message.value)
    assert (told.event_id, told.event_type, told.tenant_id) == (
        envelope.event_id, "TicketSubmitted", "globex",
    )  # fmt: skip
    assert (told.source_partition, told.source_offset, told.reason) == (3, 41, "not its tenant")
    assert b"Cannot log in" not in message.value


def test_a_message_without_readable_headers_is_still_answered() -> None:
    letter = DeadLetter(_record(b"{not json", [("event_id", b"\xff")]), "invalid JSON", "invalid")
    told = IntakeRejection.model_validate_json(rejection_message(letter).value or b"")
    assert told.event_id is None
    assert told.error_type == "invalid"
