"""Small helpers over aiokafka shared by the commands: clients that start and stop
together, a topic's partitions, and reading one record at a given offset."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

CLIENT_ID = "helpdesk-ops"


def security_options() -> dict[str, Any]:
    """How to sign in to the brokers, from the services' own variables: KAFKA_SECURITY_PROTOCOL
    (PLAINTEXT by default; SSL, SASL_PLAINTEXT, SASL_SSL), KAFKA_SASL_MECHANISM (SCRAM-SHA-512),
    KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SSL_CAFILE: an operator's Kafka user."""
    protocol = os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        options["ssl_context"] = create_ssl_context(cafile=os.environ.get("KAFKA_SSL_CAFILE"))
    if protocol.startswith("SASL_"):
        options |= {
            "sasl_mechanism": os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            "sasl_plain_username": os.environ.get("KAFKA_SASL_USERNAME"),
            "sasl_plain_password": os.environ.get("KAFKA_SASL_PASSWORD"),
        }
    return options


@asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=CLIENT_ID, **security_options()
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@asynccontextmanager
async def reader(bootstrap: str, group_id: str | None = None) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer for manual assignment that never commits on its own: the ops tool only
    reads, except `redrive`, which commits its own group's progress explicitly."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT_ID,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # an offset aged out by retention: the oldest left
        **security_options(),
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def partitions_of(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of the topics that exist (unknown topics are left out)."""
    wanted = sorted(set(topics))
    if not wanted:
        return []
    found: list[TopicPartition] = []
    for described in await admin.describe_topics(wanted):
        if described.get("error_code", 0) != 0:
            continue
        found += [TopicPartition(described["topic"], p["partition"])
                  for p in described["partitions"]]  # fmt: skip
    return sorted(found)


async def first_records_from(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], timeout_s: float
) -> dict[TopicPartition, Any]:
    """The first record at or after each offset (left out where none came in time).

    Used for the age of the oldest unconsumed event: the record at a group's committed
    offset is the next one it will read."""
    if not offsets:
        return {}
    consumer.assign(list(offsets))
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)
    first: dict[TopicPartition, Any] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while len(first) < len(offsets):
                batch = await consumer.getmany(*offsets, timeout_ms=200, max_records=500)
                for tp, records in batch.items():
                    if records and tp not in first:
                        first[tp] = records[0]
                        consumer.pause(tp)  # one record is all we need from it
    except TimeoutError:
        pass
    return first
