"""Dead letters on the `<topic>.dlq` topics: what sits there, and re-driving it.

A consumer that cannot use a record publishes it unchanged (key, value, headers) to
`<topic>.dlq`, adding `dlq-*` headers that say why (helpdesk_contracts.DlqHeader), then
goes on. Once the cause is fixed (a bug deployed away, a tenant registered), `redrive`
publishes the records again to the topic they came from, without the `dlq-*` headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from helpdesk_contracts import DlqHeader, dead_letter_topic
from helpdesk_ops.kafka_tools import (
    CLIENT_ID,
    admin_client,
    partitions_of,
    reader,
    security_options,
)

DLQ_SUFFIX = ".dlq"
REDRIVE_GROUP = "helpdesk-ops-redrive"
"""The consumer group whose committed offsets on a `.dlq` topic say how far `redrive` has
re-published it: a second run starts where the first one ended."""


def dlq_name(topic: str) -> str:
    """`ticketing.intake.v1` or `ticketing.intake.v1.dlq` -> `ticketing.intake.v1.dlq`."""
    return topic if topic.endswith(DLQ_SUFFIX) else dead_letter_topic(topic)


def source_name(dlq: str) -> str:
    return dlq.removesuffix(DLQ_SUFFIX)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def reason(self) -> str | None:
        return self.header(DlqHeader.REASON.value)

    @property
    def error_type(self) -> str | None:
        return self.header(DlqHeader.ERROR_TYPE.value)

    @property
    def consumer(self) -> str | None:
        return self.header(DlqHeader.CONSUMER.value)

    @property
    def source_topic(self) -> str:
        return self.header(DlqHeader.SOURCE_TOPIC.value) or source_name(self.topic)

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it was dead-lettered."""
        return [(k, v) for k, v in self.headers if not k.startswith("dlq-")]

    def as_json(self) -> dict[str, object]:
        return {
            "topic": self.topic, "partition": self.partition, "offset": self.offset,
            "timestamp": self.timestamp.isoformat(),
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "source_topic": self.source_topic, "consumer": self.consumer,
            "error_type": self.error_type, "reason": self.reason,
            "failed_at": self.header(DlqHeader.FAILED_AT.value),
        }  # fmt: skip


def _letter(r: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        topic=r.topic, partition=r.partition, offset=r.offset,
        timestamp=datetime.fromtimestamp(r.timestamp / 1000, UTC),
        key=r.key, value=r.value, headers=list(r.headers or ()),
    )  # fmt: skip


@dataclass(frozen=True)
class DlqSummary:
    topic: str
    count: int
    """Records still held (end minus start offsets: what retention has not removed)."""
    latest: list[DeadLetter]


async def list_dead_letters(
    bootstrap: str, *, topic: str | None = None, latest: int = 10
) -> list[DlqSummary]:
    """Every `.dlq` topic (or the one of `topic`) with its count and its `latest` records."""
    async with admin_client(bootstrap) as admin:
        names = [dlq_name(topic)] if topic else [
            t for t in await admin.list_topics() if t.endswith(DLQ_SUFFIX)
        ]  # fmt: skip
        partitions = await partitions_of(admin, names)
    summaries: list[DlqSummary] = []
    async with reader(bootstrap) as consumer:
        starts = await consumer.beginning_offsets(partitions) if partitions else {}
        ends = await consumer.end_offsets(partitions) if partitions else {}
        for name in sorted({tp.topic for tp in partitions}):
            tps = [tp for tp in partitions if tp.topic == name]
            count = sum(ends[tp] - starts[tp] for tp in tps)
            letters: list[DeadLetter] = []
            if latest > 0 and count:
                # The last `latest` of each partition hold the last `latest` of the topic.
                wanted = {tp: max(starts[tp], ends[tp] - latest) for tp in tps
                          if ends[tp] > starts[tp]}  # fmt: skip
                letters = await _read_range(consumer, wanted, ends)
                letters.sort(key=lambda x: (x.timestamp, x.partition, x.offset))
                letters = letters[-latest:]
            summaries.append(DlqSummary(name, count, letters))
    return summaries


async def _read_range(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    each: Callable[[DeadLetter], None] | None = None,
) -> list[DeadLetter]:
    """Records from `starts` up to (not including) `ends`, per partition."""
    todo = {tp: off for tp, off in starts.items() if off < ends[tp]}
    if not todo:
        return []
    consumer.assign(list(todo))
    for tp, offset in todo.items():
        consumer.seek(tp, offset)
    out: list[DeadLetter] = []
    while todo:
        batch = await consumer.getmany(*todo, timeout_ms=500, max_records=500)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break
                letter = _letter(record)
                out.append(letter)
                if each:
                    each(letter)
            position = await consumer.position(tp)
            if position >= ends[tp]:
                todo.pop(tp, None)
                consumer.pause(tp)
    return out


_DURATION = re.compile(r"^(\d+)([smhd])$")


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`30m`, `6h`, `2d` (ago) or an ISO 8601 time (UTC when it has no offset)."""
    now = now or datetime.now(UTC)
    found = _DURATION.match(value.strip())
    if found:
        amount, unit = int(found[1]), found[2]
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        return now - timedelta(seconds=amount * seconds)
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RedrivePlan:
    dlq: str
    starts: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]

    @property
    def total(self) -> int:
        return sum(max(0, self.ends[tp] - off) for tp, off in self.starts.items())


@dataclass
class RedriveResult:
    dlq: str
    read: int = 0
    redriven: int = 0
    skipped: int = 0
    dry_run: bool = False
    letters: list[DeadLetter] | None = None


async def plan_redrive(
    bootstrap: str, topic: str, *, since: datetime | None = None, again: bool = False
) -> RedrivePlan:
    """Which offsets of the `.dlq` topic a redrive covers: from `since` (or the start),
    but not before where an earlier redrive stopped (unless `again`), up to the end as it
    is now (records dead-lettered again while we run wait for the next run)."""
    dlq = dlq_name(topic)
    async with admin_client(bootstrap) as admin:
        partitions = await partitions_of(admin, [dlq])
        done = {} if again else {
            tp: om.offset
            for tp, om in (await admin.list_consumer_group_offsets(REDRIVE_GROUP)).items()
            if tp.topic == dlq and om.offset >= 0
        }  # fmt: skip
    if not partitions:
        raise LookupError(f"there is no topic {dlq}")
    async with reader(bootstrap) as consumer:
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        if since is not None:
            stamp = int(since.timestamp() * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, stamp))
            starts = {tp: found[tp].offset if found[tp] else ends[tp] for tp in partitions}
    starts = {tp: max(off, done.get(tp, 0)) for tp, off in starts.items()}
    return RedrivePlan(dlq, starts, ends)


async def redrive(
    bootstrap: str,
    plan: RedrivePlan,
    *,
    consumer_group: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda _: None,
) -> RedriveResult:
    """Publish the planned dead letters again to the topic each came from, with their
    original key, value and headers (the `dlq-*` ones left out), to the partition the key
    hashes to (the default partitioner, as our producers use) or, for a record without a
    key (a watermark), the partition it came from.

    Running it twice is harmless, twice over. First, the redrive group's committed
    offsets make a second run start where the first ended, so only records dead-lettered
    since are sent. Second, were a record sent twice anyway (`--again`, or a crash
    between the broker's acks and the commit), every consumer claims each event id in its
    inbox in the transaction that applies it (helpdesk_runtime.inbox): the second copy is
    seen as already handled and changes nothing.

    `consumer_group`: only the records that this group dead-lettered (the dlq-consumer
    header); they still go to the original topic, where every group reads them, and the
    others' inboxes skip them. The offsets committed are then those of the whole range,
    the others' records included: re-drive those with `--again --since`.
    """
    result = RedriveResult(plan.dlq, dry_run=dry_run, letters=[] if dry_run else None)
    chosen: list[DeadLetter] = []

    def each(letter: DeadLetter) -> None:
        result.read += 1
        if consumer_group and letter.consumer != consumer_group:
            result.skipped += 1
            progress(1)
            return
        chosen.append(letter)

    async with reader(bootstrap, None if dry_run else REDRIVE_GROUP) as consumer:
        await _read_range(consumer, plan.starts, plan.ends, each)
        if dry_run:
            result.letters = chosen
            progress(len(chosen))
            return result
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, client_id=CLIENT_ID, acks="all",
            enable_idempotence=True, **security_options(),
        )  # fmt: skip
        await producer.start()
        try:
            for start in range(0, len(chosen), 500):  # pipelined, acks awaited per chunk
                sent = []
                for letter in chosen[start : start + 500]:
                    partition = None if letter.key is not None else letter.header(
                        DlqHeader.SOURCE_PARTITION.value
                    )  # fmt: skip
                    sent.append(await producer.send(
                        letter.source_topic, letter.value, key=letter.key,
                        headers=letter.original_headers,
                        partition=int(partition) if partition is not None else None,
                    ))  # fmt: skip
                for ack in sent:
                    await ack
                    result.redriven += 1
                    progress(1)
        finally:
            await producer.stop()
        # Only once the broker has every copy: a crash before this re-sends, never skips.
        covered = {tp: end for tp, end in plan.ends.items() if plan.starts.get(tp, end) < end}
        if covered:  # (an empty commit would mean "the subscription's", and there is none)
            await consumer.commit(covered)
    return result
