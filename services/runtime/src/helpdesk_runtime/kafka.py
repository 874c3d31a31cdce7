"""Kafka plumbing: the idempotent producer and topic creation."""

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class OutgoingMessage:
    """One record to publish."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = field(default_factory=list)


class Producer:
    """aiokafka producer with idempotence (acks=all), a small linger and lz4 compression."""

    def __init__(
        self, bootstrap_servers: str, client_id: str, max_message_bytes: int = 4_194_304
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._max_message_bytes = max_message_bytes
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds to the running event loop.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            compression_type="lz4",
            max_batch_size=256 * 1024,
            max_request_size=self._max_message_bytes,
            request_timeout_ms=30_000,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send all, then wait until the broker acknowledged every one (or raise)."""
        if self._producer is None:
            raise RuntimeError("the producer is not started")
        futures = [
            await self._producer.send(m.topic, m.value, key=m.key, headers=m.headers)
            for m in messages
        ]
        await asyncio.gather(*futures)


@dataclass(frozen=True)
class TopicSpec:
    """A topic to make sure of at start-up."""

    name: str
    partitions: int


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        created: list[str] = []
        for t in missing:
            try:
                await admin.create_topics([NewTopic(t.name, t.partitions, replication_factor)])
                created.append(t.name)
            except TopicAlreadyExistsError:
                pass  # another replica created it in between
        if created:
            log.info("kafka topics created", topics=created)
        return created
    finally:
        await admin.close()
