"""Where a person's data can be read: the subjects' keys as a service has them, and scans of
a database's every column and of topics' raw bytes."""

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from helpdesk_contracts import RETIRED_TOPICS, TOPICS, EventEnvelope, dead_letter_topic
from helpdesk_runtime.keyring import KeyRing
from helpdesk_runtime.personal_data import SubjectKeys, open_published
from helpdesk_runtime.settings import DEV_PII_MASTER_KEYS

DEV_KEYS = SubjectKeys(KeyRing.parse(DEV_PII_MASTER_KEYS))


async def opened_with(
    database_url: str, value: bytes, keys: SubjectKeys = DEV_KEYS
) -> EventEnvelope[Any]:
    """A published event opened with the keys kept in this database (its owner's)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await open_published(conn, value, keys)
    finally:
        await conn.close()


_TEXT = ("text", "character varying", "jsonb", "json", "ARRAY", "tsvector")


async def readable_in_database(url: str, needles: Sequence[str]) -> list[str]:
    """ "<table>.<column>: <needle>" for every column of every table of the database that
    holds one of `needles` in plain text (bytes columns as UTF-8 bytes)."""
    conn = await asyncpg.connect(url)
    found: list[str] = []
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
        for c in columns:
            table, column, kind = c["table_name"], c["column_name"], c["data_type"]
            for needle in needles:
                value: str | bytes
                if kind == "bytea":
                    where, value = f'position($1 in "{column}") > 0', needle.encode()
                elif kind in _TEXT:
                    where, value = f'strpos("{column}"::text, $1) > 0', needle
                else:
                    continue
                hit = await conn.fetchval(
                    f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE {where})', value
                )
                if hit:
                    found.append(f"{table}.{column}: {needle}")
    finally:
        await conn.close()
    return found


def published_topics() -> list[str]:
    """Every topic our services publish, with its dead letters, and the retired ones: not
    the intake topics, which other systems fill in plain text (their retention is bounded)."""
    names = [t.name for t in TOPICS.values() if t.retention_days is None]
    names += list(RETIRED_TOPICS)
    return [*names, *(dead_letter_topic(n) for n in names)]


async def readable_in_topics(
    bootstrap: str, topics: Iterable[str], needles: Sequence[str], timeout_s: float = 120
) -> list[str]:
    """ "<topic>: <needle>" for each topic whose records (keys, values, headers) hold one of
    `needles` in their raw bytes, read from the beginning to the end they have now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    wanted = [t for t in topics if t in existing]
    if not wanted:
        return []
    # "earliest": a partition whose position the client resets on its own (it has none
    # yet) must go back to its beginning too, not to its end, where a new watermark once
    # looked like the last record of a partition never read.
    consumer = AIOKafkaConsumer(
        *wanted, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()  # subscribing fetches the topics' metadata
    found: set[str] = set()
    encoded = [(n, n.encode()) for n in needles]
    try:
        partitions = [
            TopicPartition(t, p) for t in wanted for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.unsubscribe()
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)  # what retention left
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        # Done when the records read reach each partition's end: not when the consumer's
        # position does, which was once seen there with records left unread (the scan then
        # passed without reading them). A partition never read to its end times out.
        read_to = {tp: starts[tp] for tp, end in ends.items() if end > starts[tp]}
        try:
            await _scan(consumer, read_to, ends, encoded, found, timeout_s)
        except TimeoutError:
            left = {f"{tp.topic}/{tp.partition}": (at, ends[tp], await consumer.position(tp))
                    for tp, at in read_to.items()}  # fmt: skip
            raise AssertionError(f"not read to the end (read to, end, position): {left}") from None
    finally:
        await consumer.stop()
    return sorted(found)


async def _scan(
    consumer: AIOKafkaConsumer, read_to: dict[TopicPartition, int],
    ends: dict[TopicPartition, int], encoded: list[tuple[str, bytes]], found: set[str],
    timeout_s: float,
) -> None:  # fmt: skip
    """Read until the records read reach each partition's end (`read_to` shrinks).

    Every partition is polled, those already read to their end too: records appended there
    meanwhile (a watermark each second) would otherwise wait in the client's buffer, which
    stops it fetching more from the broker, and the other partitions would never finish."""
    async with asyncio.timeout(timeout_s):
        while read_to:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    raw = b"".join([r.key or b"", r.value or b"", *(v for _, v in r.headers or ())])
                    found |= {f"{tp.topic}: {n}" for n, b in encoded if b in raw}
                if records and tp in read_to:
                    read_to[tp] = records[-1].offset + 1
            for tp in [tp for tp, at in read_to.items() if at >= ends[tp]]:
                del read_to[tp]
