"""Outside publishers: each writes to an intake topic of its own (in Kubernetes its KafkaUser
may write only there), opens tickets only for the tenants ticketing registered for it, and
reads why a message was refused on its own rejections topic, never on our dead letters."""

from uuid import uuid4

import asyncpg

from helpdesk_contracts import (
    IntakeRejection,
    kafka_headers,
    kafka_key,
    publisher_intake_topic,
    rejections_topic,
)
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from ticketing import publishers
from ticketing.handlers import ticket_id_for_submission

from support.events import submitted
from support.fixtures import find_keyed
from support.service import ticketing_service

TICKETS = "ticketing.tickets.v2"


async def test_a_publisher_opens_tickets_only_for_its_tenants_and_reads_why_not(
    database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    publisher = f"crm{uuid4().hex[:6]}"
    topic = publisher_intake_topic(publisher)
    async with ticketing_service(
        database_url, kafka_bootstrap, intake_publishers=frozenset({publisher})
    ) as service:
        its, another = f"t{uuid4().hex[:8]}", f"t{uuid4().hex[:8]}"
        for tenant in (its, another):
            await service.register_tenant(tenant)
        conn = await asyncpg.connect(database_url)
        try:
            await publishers.allow(conn, publisher, its)
        finally:
            await conn.close()
        allowed = submitted("p-1", tenant=its, source=publisher)
        foreign = submitted("p-2", tenant=another, source=publisher)  # a registered tenant
        await producer.send_many([
            OutgoingMessage(topic, e.to_json(), kafka_key(e), kafka_headers(e))
            for e in (allowed, foreign)
        ])  # fmt: skip

        ticket = ticket_id_for_submission(its, publisher, "p-1")
        assert await find_keyed(kafka_bootstrap, TICKETS, str(ticket).encode(), tenant=its)
        [told] = await find_keyed(kafka_bootstrap, rejections_topic(topic), b"p-2")
        rejection = IntakeRejection.model_validate_json(told.value)
        assert rejection.event_id == foreign.event_id
        assert rejection.tenant_id == another
        assert rejection.error_type == "rejected"
        assert f"publisher {publisher!r} may not open tickets for tenant {another!r}" in (
            rejection.reason
        )
        assert b"Cannot log in" not in told.value  # what it sent is not repeated
        [letter] = await find_keyed(kafka_bootstrap, f"{topic}.dlq", b"p-2")
        assert letter.value == foreign.to_json()  # we keep the original, for a replay
        never = ticket_id_for_submission(another, publisher, "p-2")
        response = await service.client.get(
            f"/v1/tickets/{never}", headers=service.auth(tenant=another)
        )
        assert response.status_code == 404
