"""Kafka plumbing: the idempotent producer and topic creation."""

import asyncio
import random
import ssl
import struct
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError
from aiokafka.producer.message_accumulator import BatchBuilder
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.settings import ServiceSettings

log = get_logger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class OutgoingMessage:
    """One record to publish."""

    topic: str
    value: bytes | None
    """None: a tombstone (a compacted topic forgets the key)."""
    key: bytes | None = None
    headers: Headers = field(default_factory=list)
    partition: int | None = None
    """Chosen by the key when None; given, for records meant for every partition
    (watermarks)."""


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    """How the service's clients authenticate and encrypt (KAFKA_SECURITY_PROTOCOL and the
    settings after it), as FastStream's broker takes it; None for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    tls = protocol.endswith("SSL")
    cafile = settings.kafka_ssl_cafile
    if tls and cafile is not None and not Path(cafile).is_file():
        raise ValueError(f"KAFKA_SSL_CAFILE={cafile}: no such file (the CA's certificates, PEM)")
    context = ssl.create_default_context(cafile=cafile) if tls else None
    if not protocol.startswith("SASL_"):
        return BaseSecurity(ssl_context=context, use_ssl=True)
    password = settings.kafka_sasl_password  # both required by the settings' check
    return _SASL[settings.kafka_sasl_mechanism](
        settings.kafka_sasl_username or "", password.get_secret_value() if password else "",
        ssl_context=context, use_ssl=tls,
    )  # fmt: skip


_SASL: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512,
}  # fmt: skip


def client_options(security: BaseSecurity | None) -> dict[str, Any]:
    """An aiokafka client's arguments for `security` (the broker's, from `kafka_security`):
    FastStream's own translation, so that its subscribers and our clients connect alike."""
    return parse_security(security) if security is not None else {}


def murmur2(key: bytes) -> int:
    """Kafka's key hash (the Java client's `Utils.murmur2`, unsigned), which decides a key's
    partition so that every producer, in any language, puts one key on one partition.

    aiokafka's own is a byte-by-byte loop costing 13 µs a key, a third of the relay's CPU;
    reading the key's 32-bit words at once makes it about five times cheaper. Checked against
    aiokafka's on random keys (tests/unit/runtime/test_partitioning.py).
    """
    length = len(key)
    h = 0x9747B28C ^ length
    body = length & ~3
    for k in struct.unpack_from(f"<{length >> 2}I", key):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= key[body + 2] << 16
        if tail >= 2:
            h ^= key[body + 1] << 8
        h = ((h ^ key[body]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner chooses for a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Producer:
    """aiokafka producer with idempotence (acks=all), a small linger and zstd compression.

    zstd, not lz4: aiokafka compresses lz4 at level 9, three times zstd's CPU for a third
    more bytes on our JSON (measured for issue 9).
    """

    def __init__(
        self, bootstrap_servers: str, client_id: str, max_message_bytes: int = 4_194_304,
        security: BaseSecurity | None = None,
    ) -> None:  # fmt: skip
        self._bootstrap_servers = bootstrap_servers
        self._security = security
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
            compression_type="zstd",
            max_batch_size=256 * 1024,
            max_request_size=self._max_message_bytes,
            request_timeout_ms=30_000,
            **client_options(self._security),
        )
        await self._producer.start()

    async def partitions(self, topic: str) -> list[int]:
        """The topic's partitions, as the broker's metadata lists them."""
        assert self._producer is not None, "the producer is not started"
        return sorted(await self._producer.partitions_for(topic))

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send all, then wait until the broker acknowledged every one (or raise).

        Records are put in batches per partition, with one future per batch rather than per
        record (aiokafka's per-record `send` was a quarter of the relay's CPU); each
        partition keeps the order given. A record over the size limit raises
        MessageSizeTooLargeError before anything is sent, as `send` would.
        """
        producer = self._producer
        if producer is None:
            raise RuntimeError("the producer is not started")
        futures: list[asyncio.Future[object]] = []
        for (topic, partition), records in (await self._by_partition(messages)).items():
            batch = producer.create_batch()
            for m in records:
                if not _append(batch, m):  # full: send it and start the next
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    _append(batch, m)  # an empty batch takes any one record
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)

    async def _by_partition(
        self, messages: Sequence[OutgoingMessage]
    ) -> dict[tuple[str, int], list[OutgoingMessage]]:
        assert self._producer is not None
        partitions: dict[str, list[int]] = {}
        grouped: dict[tuple[str, int], list[OutgoingMessage]] = defaultdict(list)
        for m in messages:
            size = (
                len(m.value or b"") + len(m.key or b"") + sum(len(k) + len(v) for k, v in m.headers)
            )
            if size > self._max_message_bytes:
                raise MessageSizeTooLargeError(
                    f"a record for {m.topic} is {size} bytes; the limit is"
                    f" {self._max_message_bytes}"
                )
            if m.topic not in partitions:
                partitions[m.topic] = sorted(await self._producer.partitions_for(m.topic))
            choices = partitions[m.topic]
            if m.partition is not None:
                if m.partition not in choices:
                    raise ValueError(f"{m.topic} has no partition {m.partition}")
                grouped[(m.topic, m.partition)].append(m)
                continue
            # Keyless records (a dead letter of a keyless message) spread like aiokafka's.
            index = (
                partition_for(m.key, len(choices))
                if m.key is not None
                else random.randrange(len(choices))
            )
            grouped[(m.topic, choices[index])].append(m)
        return grouped


def _append(batch: BatchBuilder, m: OutgoingMessage) -> bool:
    return batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers) is not None


@dataclass(frozen=True)
class TopicSpec:
    """A topic to make sure of at start-up."""

    name: str
    partitions: int
    retention_days: int | None = None
    """Bounded retention (`retention.ms`), set when the topic is created and kept set."""
    compacted: bool = False
    """Keeps the last record of each key (`cleanup.policy=compact`), and forgets a key
    soon after its tombstone."""
    retired: bool = False
    """Replaced by a newer version: never created, only its retention kept bounded where an
    older deployment has it, so that what it holds ages out."""

    @property
    def config(self) -> dict[str, str]:
        config: dict[str, str] = {}
        if self.retention_days is not None:
            config["retention.ms"] = str(self.retention_days * 86_400_000)
        if self.compacted:
            # A destroyed key's record must leave Kafka soon after its tombstone: segments
            # roll hourly so the cleaner can reach them, and tombstones go after a day.
            config |= {
                "cleanup.policy": "compact",
                "segment.ms": "3600000",
                "delete.retention.ms": "86400000",
                "min.cleanable.dirty.ratio": "0.01",
            }
        return config


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[TopicSpec], replication_factor: int = 1,
    security: BaseSecurity | None = None,
) -> list[str]:  # fmt: skip
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options(security))
    await admin.start()
    try:
        topics = list(topics)
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing and not t.retired]
        created: list[str] = []
        for t in missing:
            try:
                await admin.create_topics([
                    NewTopic(t.name, t.partitions, replication_factor, topic_configs=t.config)
                ])  # fmt: skip
                created.append(t.name)
            except TopicAlreadyExistsError:
                pass  # another replica created it in between
        # A retention added to a topic that exists (an older deployment) is set on it too.
        bounded = [t for t in topics if t.name in existing and t.config]
        if bounded:
            await admin.alter_configs([
                ConfigResource(ConfigResourceType.TOPIC, t.name, configs=t.config)
                for t in bounded
            ])  # fmt: skip
        if created:
            log.info("kafka topics created", topics=created)
        return created
    finally:
        await admin.close()
