"""Wires a BatchConsumer to a FastStream batch subscriber, and rides out outages.

Offsets are committed only after a batch is applied (or dead-lettered). When it fails
because the database or the broker is unavailable, the subscription rewinds to the batch,
pauses its partitions and keeps polling, so the consumer keeps its place in the group (a
handler blocked past max.poll.interval.ms would be thrown out, and the outage would become a
rebalance loop); a probe with backoff resumes it once the database takes writes and the
broker answers, and the same batch comes again. However long that takes, nothing is
dead-lettered for it, and the outage is logged once when it starts and once when it ends.

When the group rebalances (a replica or another member of this process joins or leaves),
a member lets its batch in flight finish and commit before it gives up its partitions
(`Handoff`): the next owner starts after it, never beside it on the same records.
"""

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from helpdesk_runtime.consumer import BatchConsumer
from helpdesk_runtime.logging import bound, get_logger
from helpdesk_runtime.transient import is_transient

log = get_logger(__name__)


def _decodable_headers(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    headers = [(k, v) for k, v in (record.headers or ()) if _is_utf8(v)]
    if len(headers) == len(record.headers or ()):
        return record  # the usual case: nothing to drop, nothing to copy
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


Probe = Callable[[], Awaitable[bool]]
"""Whether the database takes writes and the broker answers, right now."""


class Outage:
    """One subscription's pause while its dependencies are away."""

    def __init__(self, name: str, probe: Probe, max_backoff_s: float = 5.0) -> None:
        self.name = name
        self._probe = probe
        self._max_backoff_s = max_backoff_s
        self._waiting: asyncio.Task[None] | None = None
        self.since: float | None = None
        self.error: str | None = None

    def begin(self, client: Any, exc: BaseException) -> None:
        """Pause every assigned partition and resume them when the probe passes."""
        client.pause(*client.assignment())
        if self._waiting is not None and not self._waiting.done():
            return
        self.since, self.error = time.monotonic(), f"{type(exc).__name__}: {exc}"
        log.warning("consumer paused: a dependency is unavailable", consumer=self.name,
                    error=self.error[:500])  # fmt: skip
        self._waiting = asyncio.create_task(self._resume_when_healthy(client))

    async def _resume_when_healthy(self, client: Any) -> None:
        delay = 0.2
        while not await self._healthy():
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff_s)
        client.resume(*client.paused())
        outage_s = time.monotonic() - (self.since or time.monotonic())
        log.warning("consumer resumed", consumer=self.name, outage_s=round(outage_s, 1))
        self.since = self.error = None

    async def _healthy(self) -> bool:
        try:
            return await self._probe()
        except Exception:
            return False

    async def stop(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            with suppress(asyncio.CancelledError):
                await self._waiting


class Handoff(ConsumerRebalanceListener):  # type: ignore[misc]
    """Holds a rebalance until the member's batch in flight is applied and committed.

    aiokafka awaits `on_partitions_revoked` before the member rejoins, and keeps
    heartbeating meanwhile so the commit still counts. Without it the old owner could still
    be applying a batch while the new one applies the same records, and the old owner's
    commit would fail (harmless thanks to the inbox, but two writers on one key's events).
    """

    def __init__(self) -> None:
        self._idle = asyncio.Event()
        self._idle.set()

    def busy(self) -> None:
        self._idle.clear()

    def done(self) -> None:
        self._idle.set()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._idle.wait()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


def subscribe_batch(
    broker: KafkaBroker,
    *,
    topic: str,
    group_id: str,
    consumer: Callable[[], BatchConsumer],
    outage: Outage,
    max_records: int,
    batch_timeout_ms: int,
    max_poll_interval_ms: int = 300_000,
    description: str = "",
) -> None:
    """Register a batch subscriber; `consumer` is resolved per batch (it needs the pool)."""
    handoff = Handoff()

    @broker.subscriber(
        topic,
        batch=True,
        group_id=group_id,
        auto_offset_reset="earliest",
        # We acknowledge: a batch is committed after it is applied, and rewound when an
        # outage stops it (never ACK_FIRST, which is at-most-once).
        ack_policy=AckPolicy.MANUAL,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        max_poll_interval_ms=max_poll_interval_ms,
        parser=_lenient_parser,
        decoder=_raw_decoder,
        description=description,
        listener=handoff,
    )
    async def on_batch(body: Any, message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[bytes, bytes], ...] = message.raw_message
        client: Any = message.consumer  # the AIOKafkaConsumer that fetched the batch
        handoff.busy()
        try:
            await _apply_and_commit(records, message, client, consumer(), outage)
        finally:
            handoff.done()


async def _apply_and_commit(
    records: tuple[ConsumerRecord[bytes, bytes], ...],
    message: KafkaMessage,
    client: Any,
    consumer: BatchConsumer,
    outage: Outage,
) -> None:
    try:
        with bound(topic=records[0].topic):  # a batch spans partitions: letters name their own
            await consumer.process(records)
    except Exception as exc:
        await message.nack()  # rewind each partition to the batch's first record
        if not is_transient(exc):
            raise  # a bug: FastStream logs it, and the batch comes again
        outage.begin(client, exc)
        return
    try:
        await message.ack()
    except CommitFailedError:
        # The group moved on between the fetch and the handoff: the partitions' new owner
        # gets these records again, and the inbox makes applying them twice harmless.
        log.info("batch applied but not committed: the group rebalanced", topic=records[0].topic)
        return
    consumer.observe_lag(records, lambda t, p: client.highwater(TopicPartition(t, p)))
