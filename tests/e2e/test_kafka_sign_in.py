"""A service signs in to Kafka with SASL (SCRAM-SHA-512), as it does on Strimzi's
authenticated listener: its subscribers, producer, topic creation and replicas of compacted
topics all go through the broker's SASL_PLAINTEXT listener (deploy/local/infra.sh), and a
wrong password keeps it unready, saying why, instead of running half connected."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from helpdesk_contracts import kafka_headers, kafka_key, parse_envelope
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from ticketing.handlers import ticket_id_for_submission

from support.events import submitted
from support.fixtures import find_on_topic
from support.servers import SaslListener
from support.service import TicketingService, ticketing_service

TICKETS = "ticketing.tickets.v2"


def _signing_in(sasl: SaslListener, password: str | None = None) -> dict[str, Any]:
    return {
        "kafka_bootstrap_servers": sasl.bootstrap,
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": sasl.username,
        "kafka_sasl_password": password or sasl.password,
    }


@pytest.fixture
async def service(
    database_url: str, kafka_bootstrap: str, kafka_sasl: SaslListener
) -> AsyncIterator[TicketingService]:
    # The plain listener is the tests' own way in (their groups, their reads); the
    # service's every client uses the SASL one.
    async with ticketing_service(
        database_url, kafka_bootstrap, **_signing_in(kafka_sasl)
    ) as running:
        yield running


async def test_a_service_signed_in_with_scram_consumes_and_publishes(
    service: TicketingService, producer: Producer, kafka_bootstrap: str
) -> None:
    opened = await service.client.post("/v1/tickets", headers=service.auth(), json={
        "subject": "Signed in", "description": "Over SASL.",
        "requester": {"customer_id": "c-1", "name": "Ada"},
    })  # fmt: skip
    assert opened.status_code == 201, opened.text
    message = submitted(f"m-{uuid4().hex[:6]}", "acme")
    await producer.send_many([
        OutgoingMessage("ticketing.intake.v1", message.to_json(), kafka_key(message),
                        kafka_headers(message)),
    ])  # fmt: skip
    from_intake = ticket_id_for_submission("acme", "mail-gateway", message.payload.external_id)
    keys = {opened.json()["id"].encode(), str(from_intake).encode()}
    records = await find_on_topic(kafka_bootstrap, TICKETS, lambda r: r.key in keys, until=2)
    assert {parse_envelope(r.value).event_type for r in records} == {"TicketOpened"}
    ready = await service.client.get("/health/ready")
    assert ready.status_code == 200, ready.text


async def test_a_wrong_password_keeps_the_service_unready_and_says_why(
    database_url: str, kafka_bootstrap: str, kafka_sasl: SaslListener,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    wrong = _signing_in(kafka_sasl, password="not-the-password")
    async with ticketing_service(database_url, kafka_bootstrap, connected=False, **wrong) as svc:
        said = ""

        def refused() -> bool:
            nonlocal said
            said += capfd.readouterr().err  # the service's log, as a pod's would show it
            # The client names the cause; the runtime says it keeps trying.
            return "SaslAuthenticationFailed" in said and "kafka not reachable yet" in said

        async with asyncio.timeout(60):
            while not refused():  # noqa: ASYNC110  (a log line has no event to await)
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=svc.base_url) as client:
            ready = await client.get("/health/ready")
        assert ready.status_code == 503, ready.text
        assert not svc.runtime.kafka_connected.is_set()
