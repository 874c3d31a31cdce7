"""Dead letters: the original record, unchanged, with the reason in its headers."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from aiokafka.structs import ConsumerRecord

from helpdesk_contracts import DlqHeader, IntakeRejection, dead_letter_topic, rejections_topic
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)

MAX_REASON_BYTES = 4096


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be used, and why."""

    record: "ConsumerRecord[bytes, bytes]"
    reason: str
    # invalid | oversize | unexpected_event_type | rejected (a business rule) | failed (the
    # handler raised on this event alone)
    error_type: str


def dead_letter_message(letter: DeadLetter, consumer: str) -> OutgoingMessage:
    """Same key, value and headers as the original, plus `dlq-*` headers."""
    r = letter.record
    # .value: aiokafka's record builder accepts only exact str keys, not str subclasses.
    extra = [
        (DlqHeader.REASON.value, letter.reason.encode()[:MAX_REASON_BYTES]),
        (DlqHeader.ERROR_TYPE.value, letter.error_type.encode()),
        (DlqHeader.CONSUMER.value, consumer.encode()),
        (DlqHeader.SOURCE_TOPIC.value, r.topic.encode()),
        (DlqHeader.SOURCE_PARTITION.value, str(r.partition).encode()),
        (DlqHeader.SOURCE_OFFSET.value, str(r.offset).encode()),
        (DlqHeader.FAILED_AT.value, datetime.now(UTC).isoformat().encode()),
    ]
    return OutgoingMessage(
        topic=dead_letter_topic(r.topic),
        key=r.key,
        value=r.value or b"",
        headers=[*(r.headers or ()), *extra],
    )


def rejection_message(letter: DeadLetter) -> OutgoingMessage:
    """What the publisher is told: which message, and why; never the message's content."""
    r = letter.record
    headers = {k: v.decode(errors="replace") for k, v in r.headers or ()}
    try:
        event_id: UUID | None = UUID(headers.get("event_id", ""))
    except ValueError:
        event_id = None
    rejection = IntakeRejection(
        event_id=event_id, event_type=headers.get("event_type"),
        tenant_id=headers.get("tenant_id"), source_topic=r.topic,
        source_partition=r.partition, source_offset=r.offset, error_type=letter.error_type,
        reason=letter.reason[:MAX_REASON_BYTES], rejected_at=datetime.now(UTC),
    )  # fmt: skip
    return OutgoingMessage(rejections_topic(r.topic), rejection.model_dump_json().encode(), r.key)


class DeadLetterPublisher:
    """Publishes dead letters for one consumer group and counts them; with `rejections`,
    also tells the publisher why on its own rejections topic."""

    def __init__(self, producer: Producer, consumer: str, *, rejections: bool = False) -> None:
        self._producer = producer
        self._consumer = consumer
        self._rejections = rejections
        self.published = 0

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        messages = [dead_letter_message(x, self._consumer) for x in letters]
        if self._rejections:
            messages += [rejection_message(x) for x in letters]
        await self._producer.send_many(messages)
        self.published += len(letters)
        for x in letters:
            log.warning(
                "message dead-lettered",
                consumer=self._consumer,
                source=f"{x.record.topic}/{x.record.partition}@{x.record.offset}",
                error_type=x.error_type,
                reason=x.reason[:500],
            )
