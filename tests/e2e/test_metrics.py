"""`/metrics` moves by exactly what real traffic did: intake events consumed, skipped and
dead-lettered, events published, HTTP requests; and a tolerant reader skips an event type
that did not exist when the consumer was built."""

import asyncio
import json
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpdesk_contracts import kafka_key
from helpdesk_runtime.kafka import OutgoingMessage, Producer

from support.events import submitted
from support.service import TicketingService, ticketing_service

INTAKE = "ticketing.intake.v1"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


async def scrape(service: TicketingService) -> Samples:
    response = await service.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` that has these labels (and any others)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def wait_for(service: TicketingService, done: object, timeout_s: float = 30) -> Samples:
    async with asyncio.timeout(timeout_s):
        while True:
            samples = await scrape(service)
            if done(samples):  # type: ignore[operator]
                return samples
            await asyncio.sleep(0.1)


async def test_metrics_move_by_what_the_traffic_did(
    service: TicketingService, producer: Producer
) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    group = service.settings.intake_group_id
    before = await scrape(service)

    tickets = [submitted(f"m-{uuid4().hex[:8]}", tenant=tenant) for _ in range(5)]
    # An event type released after this consumer was built, on the topic it reads.
    newer = json.loads(submitted("x", tenant=tenant).to_json())
    newer |= {"event_type": "TicketSubmittedWithAttachments", "schema_version": 1}
    await producer.send_many(
        [
            *(OutgoingMessage(INTAKE, t.to_json(), key=kafka_key(t)) for t in tickets),
            OutgoingMessage(INTAKE, tickets[0].to_json(), key=b"again"),  # redelivered copy
            OutgoingMessage(INTAKE, json.dumps(newer).encode(), key=b"newer"),
            OutgoingMessage(INTAKE, b"{not json", key=b"garbage"),
        ]
    )  # fmt: skip

    def intake_done(s: Samples) -> bool:
        consumed = total(s, "helpdesk_events_consumed_total", consumer=group)
        return consumed - total(before, "helpdesk_events_consumed_total", consumer=group) >= 5 and (
            total(s, "helpdesk_events_produced_total", event_type="TicketOpened")
            - total(before, "helpdesk_events_produced_total", event_type="TicketOpened")
            >= 5
        )

    def all_seen(s: Samples) -> bool:  # every one of the 8 records went one way or another
        return intake_done(s) and all(
            total(s, name, consumer=group) > total(before, name, consumer=group)
            for name in (
                "helpdesk_events_dead_lettered_total",
                "helpdesk_events_skipped_total",
                "helpdesk_events_duplicate_total",
            )
        )

    after = await wait_for(service, all_seen)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    labels = {"consumer": group, "topic": INTAKE}
    assert moved("helpdesk_events_consumed_total", **labels, event_type="TicketSubmitted") == 5
    assert moved("helpdesk_events_duplicate_total", **labels) == 1
    assert (
        moved(
            "helpdesk_events_skipped_total", **labels,
            event_type="TicketSubmittedWithAttachments", reason="unknown_event_type",
        )
        == 1
    )  # fmt: skip
    assert moved("helpdesk_events_dead_lettered_total", **labels, error_type="invalid") == 1
    assert moved("helpdesk_events_dead_lettered_total", **labels) == 1  # skipped, not lettered
    assert moved("helpdesk_events_produced_total", event_type="TicketOpened") == 5
    assert moved("helpdesk_event_age_seconds_count", **labels) == 5
    assert moved("helpdesk_consumer_batch_size_sum", consumer=group) == 8
    assert moved("helpdesk_consumer_handler_seconds_count", consumer=group) >= 1
    lag = [
        v for (n, ls), v in after.items() if n == "helpdesk_consumer_lag" and labels.items() <= ls
    ]
    assert lag  # the partitions the records landed on
    assert all(v == 0 for v in lag)  # nothing else was published: each read to its end
    assert moved("helpdesk_outbox_publish_seconds_count", relay="kafka") >= 1
    assert moved("helpdesk_outbox_delay_seconds_count", relay="kafka") == 5

    # HTTP: by route template and status.
    headers = service.auth(tenant=tenant)
    for _ in range(3):
        assert (await service.client.get("/v1/tickets", headers=headers)).status_code == 200
    missing = await service.client.get(f"/v1/tickets/{uuid4()}", headers=headers)
    assert missing.status_code == 404
    text = {**headers, "Content-Type": "text/plain"}
    assert (
        await service.client.post("/v1/tickets", content=b"hi", headers=text)
    ).status_code == 415
    assert (await service.client.get(f"/nowhere/{uuid4()}")).status_code == 404
    http = await scrape(service)
    refused = {"method": "POST", "route": "/v1/tickets", "status": "415"}
    assert total(http, "helpdesk_http_requests_total", **refused) == 1  # answered before routing
    nowhere = {"method": "GET", "route": "unmatched", "status": "404"}
    assert total(http, "helpdesk_http_requests_total", **nowhere) == 1  # one series, any path
    route = {"method": "GET", "route": "/v1/tickets"}
    assert (
        total(http, "helpdesk_http_requests_total", **route, status="200")
        - total(after, "helpdesk_http_requests_total", **route, status="200")
        == 3
    )
    one = {"method": "GET", "route": "/v1/tickets/{ticket_id}", "status": "404"}
    assert total(http, "helpdesk_http_requests_total", **one) == 1
    assert total(http, "helpdesk_http_request_seconds_count", **route) >= 3

    # Gauges read at scrape time: everything stored was published; the pool is in use.
    drained = await wait_for(
        service, lambda s: value(s, "helpdesk_outbox_backlog", relay="kafka") == 0
    )
    assert value(drained, "helpdesk_db_pool_max_connections") == service.settings.database_pool_max
    assert value(drained, "helpdesk_db_pool_connections", state="in_use") >= 1  # LISTEN feed
    assert value(drained, "helpdesk_job_restarts", job="outbox-relay") == 0
