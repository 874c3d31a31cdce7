"""A job that keeps a compacted topic (a table of current states) in the service's database."""

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)


class CompactedReplica(ABC):
    """Reads `topic` from its beginning (or, with a `group_id`, from where that group
    committed) and follows it, handing each batch of records to `apply`. `caught_up` is set
    once it has read what the topic held when it started; until then `behind` tells
    readiness so."""

    def __init__(self, topic: str, bootstrap_servers: str, group_id: str | None = None) -> None:
        self._topic, self._bootstrap, self._group_id = topic, bootstrap_servers, group_id
        self._stopping = asyncio.Event()
        self.caught_up = asyncio.Event()

    @abstractmethod
    async def apply(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Keep what these records say (in the order read)."""

    def behind(self) -> str | None:
        return None if self.caught_up.is_set() else f"catching up with {self._topic}"

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            self._topic, bootstrap_servers=self._bootstrap, group_id=self._group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
        )  # fmt: skip
        await consumer.start()
        try:
            ends: dict[Any, int] | None = None
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                if records := [r for rs in batch.values() for r in rs]:
                    await self.apply(records)
                    if self._group_id is not None:
                        await consumer.commit()
                if ends is None and consumer.assignment():
                    ends = await consumer.end_offsets(list(consumer.assignment()))
                if ends is not None and not self.caught_up.is_set() and await _at(consumer, ends):
                    self.caught_up.set()
                    log.info("replica caught up", topic=self._topic)
        finally:
            with suppress(Exception):
                await consumer.stop()

    def stop(self) -> None:
        self._stopping.set()


async def _at(consumer: AIOKafkaConsumer, ends: dict[Any, int]) -> bool:
    """Whether every partition has been read to `ends`."""
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])
