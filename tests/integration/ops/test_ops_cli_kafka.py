"""`helpdesk lag` and `helpdesk dead-letters` against the real broker, invoked as an
operator would (the typer app, in a thread: the commands run their own event loop)."""

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from typer.testing import CliRunner

from helpdesk_contracts import DlqHeader
from helpdesk_ops.cli import app

from support.fixtures import consume, topic_size
from support.servers import SaslListener


async def helpdesk(bootstrap: str, *args: str) -> Any:
    """Run `helpdesk ARGS --bootstrap B`; its JSON output (the command must succeed)."""
    answer = await asyncio.to_thread(
        CliRunner().invoke, app, [*args, "--bootstrap", bootstrap], env={"COLUMNS": "200"}
    )
    assert answer.exit_code == 0, answer.output
    return json.loads(answer.stdout) if "--json" in args else answer.stdout


async def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def test_lag_shows_a_groups_lag_and_the_age_of_its_oldest_unread_event(
    kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(2)
    group = f"sla-ops-test-{uuid.uuid4().hex[:8]}"  # named like the SLA service's groups
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(5):  # partition 0: written 120 s, 119 s, ... ago
            await producer.send_and_wait(
                topic, b"x", partition=0, timestamp_ms=now_ms - (120 - i) * 1000
            )
        for i in range(3):  # partition 1: 60 s, 59 s, 58 s ago
            await producer.send_and_wait(
                topic, b"y", partition=1, timestamp_ms=now_ms - (60 - i) * 1000
            )
    finally:
        await producer.stop()
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    await commit(kafka_bootstrap, group, {p0: 2, p1: 0})  # read 2 of p0, none of p1

    [row] = await helpdesk(kafka_bootstrap, "lag", "--group", group, "--json")

    assert (row["service"], row["group"], row["topic"], row["lag"]) == ("sla", group, topic, 6)
    parts = {p["partition"]: p for p in row["partitions"]}
    assert (parts[0]["committed"], parts[0]["end"], parts[0]["lag"]) == (2, 5, 3)
    assert (parts[1]["committed"], parts[1]["end"], parts[1]["lag"]) == (0, 3, 3)
    # The oldest unread is p0's offset 2, written 118 s before `now_ms`.
    assert (
        parts[0]["oldest_unconsumed_at"]
        == datetime.fromtimestamp((now_ms - 118_000) / 1000, UTC).isoformat()
    )
    elapsed = datetime.now(UTC).timestamp() - now_ms / 1000
    assert 118 <= row["oldest_age_s"] <= 118 + elapsed + 1

    await commit(kafka_bootstrap, group, {p0: 5, p1: 3})  # caught up: no lag, no age
    [row] = await helpdesk(kafka_bootstrap, "lag", "--group", group, "--json")
    assert (row["lag"], row["oldest_age_s"]) == (0, None)

    table = await helpdesk(kafka_bootstrap, "lag", "--service", "sla", "--group", group)
    assert group in table
    assert topic in table


def dead_letter(topic: str, offset: int, reason: str) -> list[tuple[str, bytes]]:
    return [
        ("event_id", str(uuid.uuid4()).encode()), ("event_type", b"TicketSubmitted"),
        (DlqHeader.REASON.value, reason.encode()), (DlqHeader.ERROR_TYPE.value, b"invalid"),
        (DlqHeader.CONSUMER.value, b"ticketing-intake"),
        (DlqHeader.SOURCE_TOPIC.value, topic.encode()),
        (DlqHeader.SOURCE_PARTITION.value, b"0"),
        (DlqHeader.SOURCE_OFFSET.value, str(offset).encode()),
        (DlqHeader.FAILED_AT.value, datetime.now(UTC).isoformat().encode()),
    ]  # fmt: skip


async def test_dead_letters_are_listed_with_reasons_and_redriven_once(
    kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    sent: dict[bytes, list[tuple[str, bytes]]] = {}
    try:
        for i, reason in enumerate(["no tenant 'acme'", "payload.subject: too long"]):
            key, headers = f"ext-{i}".encode(), dead_letter(topic, i, reason)
            sent[key] = headers
            await producer.send_and_wait(f"{topic}.dlq", b'{"n": %d}' % i, key=key,
                                         headers=headers)  # fmt: skip
    finally:
        await producer.stop()

    [listed] = await helpdesk(kafka_bootstrap, "dead-letters", "list", "--topic", topic, "--json")
    assert (listed["topic"], listed["count"]) == (f"{topic}.dlq", 2)
    assert [(x["key"], x["reason"], x["error_type"], x["consumer"], x["source_topic"])
            for x in listed["latest"]] == [
        ("ext-0", "no tenant 'acme'", "invalid", "ticketing-intake", topic),
        ("ext-1", "payload.subject: too long", "invalid", "ticketing-intake", topic),
    ]  # fmt: skip
    table = await helpdesk(kafka_bootstrap, "dead-letters", "list", "--topic", topic)
    assert "payload.subject: too long" in table

    dry = await helpdesk(kafka_bootstrap, "dead-letters", "redrive", "--topic", topic,
                         "--dry-run", "--json")  # fmt: skip
    assert (dry["redriven"], len(dry["letters"])) == (0, 2)
    assert await topic_size(kafka_bootstrap, topic) == 0

    done = await helpdesk(kafka_bootstrap, "dead-letters", "redrive", "--topic", topic, "--json")
    assert (done["read"], done["redriven"]) == (2, 2)
    back = await consume(kafka_bootstrap, topic, until=2)
    assert sorted(r.key for r in back) == sorted(sent)
    for record in back:
        original = [(k, v) for k, v in sent[record.key] if not k.startswith("dlq-")]
        assert list(record.headers) == original
        assert record.value == b'{"n": %d}' % int(record.key.decode()[-1])

    again = await helpdesk(kafka_bootstrap, "dead-letters", "redrive", "--topic", topic, "--json")
    assert (again["read"], again["redriven"]) == (0, 0)
    assert await topic_size(kafka_bootstrap, topic) == 2  # once, not twice

    # A new dead letter: the next run re-drives it alone.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(f"{topic}.dlq", b"{}", key=b"ext-2",
                                     headers=dead_letter(topic, 2, "failed"))  # fmt: skip
    finally:
        await producer.stop()
    more = await helpdesk(kafka_bootstrap, "dead-letters", "redrive", "--topic", f"{topic}.dlq",
                          "--json")  # fmt: skip
    assert more["redriven"] == 1
    assert await topic_size(kafka_bootstrap, topic) == 3


async def test_lag_signs_in_with_the_services_own_variables(
    kafka_bootstrap: str, kafka_sasl: SaslListener, new_topic: Any
) -> None:
    topic = await new_topic(1)
    group = f"sla-ops-sasl-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(4):
            await producer.send_and_wait(topic, b"x", partition=0)
    finally:
        await producer.stop()
    await commit(kafka_bootstrap, group, {TopicPartition(topic, 0): 1})
    signed_in = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": kafka_sasl.username, "KAFKA_SASL_PASSWORD": kafka_sasl.password,
    }  # fmt: skip
    args = ["lag", "--group", group, "--json", "--bootstrap", kafka_sasl.bootstrap]

    answer = await asyncio.to_thread(CliRunner().invoke, app, args, env=signed_in)
    assert answer.exit_code == 0, answer.output
    [row] = json.loads(answer.stdout)
    assert (row["topic"], row["lag"]) == (topic, 3)

    wrong = {**signed_in, "KAFKA_SASL_PASSWORD": "not-the-password"}
    refused = await asyncio.to_thread(CliRunner().invoke, app, args, env=wrong)
    assert refused.exit_code == 1, refused.output
    # aiokafka logs the refusal (SaslAuthenticationFailed) and raises "unable to bootstrap".
    assert "Unable to bootstrap" in refused.stderr
    assert "KAFKA_SASL_*" in refused.stderr
    assert isinstance(refused.exception, SystemExit)  # the CLI's own exit, not a crash
