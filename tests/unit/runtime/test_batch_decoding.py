"""The consumer's decode step and dead-letter format, without servers."""

import json
from typing import Any
from uuid import uuid4

from aiokafka.structs import ConsumerRecord

from helpdesk_runtime.consumer import BatchConsumer
from helpdesk_runtime.deadletters import DeadLetter, dead_letter_message

from support.events import opened, submitted


def _record(value: bytes, offset: int = 0, topic: str = "t") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=2,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=[("trace", b"\xff\xfe")],
    )


_NOT_NEEDED_TO_DECODE: Any = {"pool": None, "handler": None, "dead_letters": None}


def _consumer(max_bytes: int = 10_000) -> BatchConsumer:
    return BatchConsumer(
        name="c",
        **_NOT_NEEDED_TO_DECODE,
        accepts=frozenset({"TicketOpened"}),
        max_message_bytes=max_bytes,
    )


def test_sorts_a_batch_into_usable_events_and_dead_letters() -> None:
    good = opened(uuid4())
    records = [
        _record(good.to_json(), 0),
        _record(good.to_json(), 1),  # the same event twice: kept once
        _record(b"\x89PNG binary", 2),
        _record(submitted("x").to_json(), 3),
        _record(b"{" + b" " * 20_000 + b"}", 4),
    ]
    decoded, letters, skipped = _consumer()._decode(records)
    assert skipped == []
    assert [d.envelope.event_id for d in decoded] == [good.event_id]
    assert [(x.record.offset, x.error_type) for x in letters] == [
        (2, "invalid"),
        (3, "unexpected_event_type"),
        (4, "oversize"),
    ]
    assert letters[1].reason == "event type 'TicketSubmitted' belongs on ticketing.intake.v1, not t"


def test_a_dead_letter_keeps_the_original_and_adds_the_reason() -> None:
    record = _record(b"garbage", 41)
    message = dead_letter_message(DeadLetter(record, "bad JSON", "invalid"), "ticketing-intake")
    assert all(type(k) is str for k, _ in message.headers)  # aiokafka refuses str subclasses
    headers: dict[str, Any] = dict(message.headers)
    assert (message.topic, message.key, message.value) == ("t.dlq", b"k", b"garbage")
    assert headers["trace"] == b"\xff\xfe"
    assert headers["dlq-reason"] == b"bad JSON"
    assert headers["dlq-consumer"] == b"ticketing-intake"
    assert (headers["dlq-source-partition"], headers["dlq-source-offset"]) == (b"2", b"41")


def test_a_tolerant_reader_skips_types_it_does_not_handle_but_not_broken_ones() -> None:
    newer = opened(uuid4()).model_dump(mode="json") | {"event_type": "TicketTeleported"}
    sibling = opened(uuid4()).model_dump(mode="json") | {"event_type": "TicketSolved"}
    broken = opened(uuid4()).model_dump(mode="json")
    del broken["payload"]["subject"]
    not_an_envelope = {"event_type": "TicketTeleported", "tenant_id": "NOT A TENANT"}
    nameless = newer | {"event_type": ""}
    records = [
        _record(json.dumps(newer).encode(), 0, topic="ticketing.tickets.v2"),
        _record(json.dumps(sibling).encode(), 1, topic="ticketing.tickets.v2"),
        _record(json.dumps(broken).encode(), 2, topic="ticketing.tickets.v2"),
        _record(json.dumps(not_an_envelope).encode(), 3, topic="ticketing.tickets.v2"),
        _record(json.dumps(nameless).encode(), 4, topic="ticketing.tickets.v2"),
    ]
    decoded, letters, skipped = _consumer()._decode(records)
    assert decoded == []
    assert [(x.record.offset, x.event_type, x.reason) for x in skipped] == [
        (0, "TicketTeleported", "unknown_event_type"),
        (1, "TicketSolved", "not_consumed"),
    ]
    assert [(x.record.offset, x.error_type) for x in letters] == [
        (2, "invalid"), (3, "invalid"), (4, "invalid"),
    ]  # fmt: skip
    assert "subject" in letters[0].reason
    assert "tenant_id" in letters[1].reason
