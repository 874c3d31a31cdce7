"""Topics made sure of at start-up, against the real Kafka: bounded retention is set when a
topic is created, and on a topic that an older deployment created without it."""

import uuid

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from helpdesk_runtime.kafka import TopicSpec, ensure_topics


async def _retention_ms(bootstrap: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})]
        )
        [(_error, _message, _type, _name, entries)] = response.resources
        return next(str(e[1]) for e in entries if e[0] == "retention.ms")
    finally:
        await admin.close()


async def test_a_bounded_retention_is_set_on_new_and_existing_topics(kafka_bootstrap: str) -> None:
    new, old = f"test.retention.{uuid.uuid4().hex[:8]}", f"test.retention.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(old, 1)])  # as an older deployment did
    broker_default = await _retention_ms(kafka_bootstrap, old)

    created = await ensure_topics(
        kafka_bootstrap, [TopicSpec(new, 2, retention_days=3), TopicSpec(old, 1, retention_days=2)]
    )

    assert created == [new]
    assert await _retention_ms(kafka_bootstrap, new) == str(3 * 86_400_000)
    assert await _retention_ms(kafka_bootstrap, old) == str(2 * 86_400_000) != broker_default


async def test_a_retired_topic_is_never_created_and_ages_out_where_it_exists(
    kafka_bootstrap: str,
) -> None:
    kept, gone = f"test.retired.{uuid.uuid4().hex[:8]}", f"test.retired.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(kept, 1)])  # before it was retired

    created = await ensure_topics(kafka_bootstrap, [
        TopicSpec(kept, 1, retention_days=7, retired=True),
        TopicSpec(gone, 1, retention_days=7, retired=True),
    ])  # fmt: skip

    assert created == []
    assert await _retention_ms(kafka_bootstrap, kept) == str(7 * 86_400_000)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert gone not in await admin.list_topics()
    finally:
        await admin.close()
