"""Wires a BatchConsumer to a FastStream batch subscriber."""

import dataclasses
from collections.abc import Callable
from typing import Any

from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from helpdesk_runtime.consumer import BatchConsumer
from helpdesk_runtime.logging import bound


def _decodable_headers(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    headers = [(k, v) for k, v in (record.headers or ()) if _is_utf8(v)]
    return dataclasses.replace(record, headers=headers)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _lenient_parser(
    records: tuple[ConsumerRecord[Any, Any], ...], original: Callable[..., Any]
) -> StreamMessage[Any]:
    # FastStream's batch parser decodes every header as UTF-8 and would fail the whole
    # batch on one binary header; parse a cleaned copy and keep the original records,
    # which are what gets dead-lettered.
    message: StreamMessage[Any] = await original(tuple(_decodable_headers(r) for r in records))
    message.raw_message = records
    return message


async def _raw_decoder(message: StreamMessage[Any], original: Callable[..., Any]) -> Any:
    return message.body  # our BatchConsumer decodes; FastStream must not try JSON itself


def subscribe_batch(
    broker: KafkaBroker,
    *,
    topic: str,
    group_id: str,
    consumer: Callable[[], BatchConsumer],
    max_records: int,
    batch_timeout_ms: int,
    description: str = "",
) -> None:
    """Register a batch subscriber; `consumer` is resolved per batch (it needs the pool)."""

    @broker.subscriber(
        topic,
        batch=True,
        group_id=group_id,
        auto_offset_reset="earliest",
        # Offsets are committed only after the batch is applied; on an error the batch is
        # redelivered (never ACK_FIRST, which is at-most-once).
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        parser=_lenient_parser,
        decoder=_raw_decoder,
        description=description,
    )
    async def on_batch(body: Any, message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[bytes, bytes], ...] = message.raw_message
        with bound(topic=topic):  # a batch spans partitions: dead letters name their own
            await consumer().process(records)
        client: Any = message.consumer  # the AIOKafkaConsumer that fetched the batch
        consumer().observe_lag(records, lambda t, p: client.highwater(TopicPartition(t, p)))
