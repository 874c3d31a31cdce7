"""A job that keeps a compacted topic (a table of current states) in the service's database.

Where it has read to is kept in the same database, in the transaction that applies what it
read (`replica_positions`), never in a consumer group: a restart goes on from there, a new
database starts from the beginning, and a database restored from a backup starts from the
position it was backed up with, so it is filled again with exactly what it lacks.
"""

import asyncio
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from contextlib import suppress

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream.security import BaseSecurity

from helpdesk_runtime.db import Connection
from helpdesk_runtime.kafka import client_options
from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)


class CompactedReplica(ABC):
    """Follows `topic` from the position its database holds (else from the beginning),
    handing each batch of records to `apply` in the transaction that moves the position on.
    `caught_up` is set once it has read what the topic held when it started; until then
    `behind` tells readiness so."""

    def __init__(
        self, topic: str, bootstrap_servers: str, pool: asyncpg.Pool,
        security: BaseSecurity | None = None,
    ) -> None:  # fmt: skip
        self._topic, self._bootstrap, self._pool = topic, bootstrap_servers, pool
        self._security = security
        self._stopping = asyncio.Event()
        self.caught_up = asyncio.Event()

    @abstractmethod
    async def apply(
        self, conn: Connection, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Keep what these records say (in the order read), in this transaction."""

    def behind(self) -> str | None:
        return None if self.caught_up.is_set() else f"catching up with {self._topic}"

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", **client_options(self._security),
        )  # fmt: skip
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            async with self._pool.acquire() as conn:
                held = await _positions(conn, self._topic)
            for tp in partitions:
                if tp.partition in held:
                    consumer.seek(tp, held[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            ends = await consumer.end_offsets(partitions)
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                if records := [r for rs in batch.values() for r in rs]:
                    await self._apply(records)
                if not self.caught_up.is_set() and await _at(consumer, ends):
                    self.caught_up.set()
                    log.info("replica caught up", topic=self._topic)
        finally:
            with suppress(Exception):
                await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """The topic's partitions, once it exists (its owner may not have created it yet)."""
        delay = 0.5
        while True:
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(self._topic)
            if found:
                return [TopicPartition(self._topic, p) for p in sorted(found)]
            log.info("waiting for the topic to exist", topic=self._topic)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        after: dict[int, int] = defaultdict(int)
        for r in records:
            after[r.partition] = max(after[r.partition], r.offset + 1)
        async with self._pool.acquire() as conn, conn.transaction():
            await self.apply(conn, records)
            await conn.execute(
                "INSERT INTO replica_positions (topic, partition, next_offset)"
                " SELECT $1, p, o FROM unnest($2::int[], $3::bigint[]) AS x(p, o)"
                " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                self._topic, list(after), list(after.values()),
            )  # fmt: skip

    def stop(self) -> None:
        self._stopping.set()


async def _positions(conn: Connection, topic: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT partition, next_offset FROM replica_positions WHERE topic = $1", topic
    )
    return {r["partition"]: r["next_offset"] for r in rows}


async def _at(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether every partition has been read to `ends`."""
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])
