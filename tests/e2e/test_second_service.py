"""A service that is not ticketing, built from the runtime alone in a few lines: what the
next service (SLA) gets without copying anything from ticketing.

"Reminders" consumes TicketOpened, keeps a row per ticket, sets a durable timer, and when it
fires, marks the row and publishes an event through its transactional outbox; agents read
its rows over HTTP. Its database gets only the runtime tables it uses.
"""

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any
from uuid import uuid4

import asyncpg
import httpx
from fastapi import APIRouter, Depends

from helpdesk_contracts import EventEnvelope, kafka_key
from helpdesk_runtime import outbox, timers
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.db import Connection, Migration
from helpdesk_runtime.http import create_app
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.outbox import Source
from helpdesk_runtime.service import ConsumerSpec, ServiceRuntime
from helpdesk_runtime.settings import ServiceSettings
from helpdesk_runtime.timers import DueTimer
from helpdesk_runtime.tokens import mint

from support.chaos import eventually
from support.events import opened, submitted
from support.fixtures import consume

SCHEMA = Migration(
    "reminders/0001_seen.sql",
    "CREATE TABLE seen (tenant_id text, ticket_id uuid, subject text,"
    " reminded boolean NOT NULL DEFAULT false, PRIMARY KEY (tenant_id, ticket_id))",
)


class Settings(ServiceSettings):
    service_name: str = "reminders"


async def on_tickets(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> list[Rejection]:
    for e in batch:
        await conn.execute(
            "INSERT INTO seen (tenant_id, ticket_id, subject) VALUES ($1, $2, $3)",
            e.tenant_id, e.aggregate_id, e.payload.subject,
        )  # fmt: skip
        await timers.schedule(
            conn, "remind", str(e.aggregate_id), e.occurred_at, {"n": e.payload.number},
            e.tenant_id,
        )  # fmt: skip
    return []


async def remind(conn: Connection, due: Sequence[DueTimer]) -> None:
    for t in due:
        await conn.execute(
            "UPDATE seen SET reminded = true WHERE tenant_id = $1 AND ticket_id = $2::uuid",
            t.tenant_id, t.key,
        )  # fmt: skip
    await outbox.put(conn, [submitted(f"reminder-{t.key}", tenant=t.tenant_id) for t in due])


def api(auth: HttpAuth, runtime: ServiceRuntime) -> list[APIRouter]:
    router = APIRouter()

    @router.get("/v1/seen")
    async def seen(
        caller: Annotated[Principal, Depends(auth.principal)],
    ) -> list[dict[str, Any]]:
        async with runtime.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT ticket_id, subject, reminded FROM seen WHERE tenant_id = $1",
                caller.tenant_id,
            )
        return [dict(r) for r in rows]

    return [router]


async def test_a_second_service_needs_only_the_runtime(
    empty_database_url: str, kafka_bootstrap: str, producer: Producer, new_topic: Any
) -> None:
    tickets_topic, reminders_topic = await new_topic(3), await new_topic(1)
    settings = Settings(
        database_url=empty_database_url, kafka_bootstrap_servers=kafka_bootstrap,
        kafka_create_topics=False, consumer_batch_timeout_ms=50, outbox_poll_interval_s=0.1,
        timer_poll_interval_s=0.1, log_format="console",
    )  # fmt: skip
    runtime = ServiceRuntime(
        settings,
        migrations=[SCHEMA],
        consumers=[
            ConsumerSpec(
                tickets_topic,
                f"reminders-{uuid4().hex[:6]}",
                on_tickets,
                frozenset({"TicketOpened"}),
            )
        ],
        route=lambda _event_type: reminders_topic,
        publish_from=Source.OUTBOX,
        timers={"remind": remind},
    )
    app = create_app(
        runtime, title="Reminders", version="0", description="A second service",
        api=lambda auth: api(auth, runtime),
    )  # fmt: skip
    ticket = opened(uuid4())
    token = mint(settings, Principal("acme", "agent-7", Role.AGENT), ttl_s=60)
    async with (
        runtime.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://svc") as http,
    ):
        await producer.send_many(
            [OutgoingMessage(tickets_topic, ticket.to_json(), kafka_key(ticket))]
        )
        published = await consume(kafka_bootstrap, reminders_topic, until=1)
        assert len(published) == 1
        assert published[0].key == f"reminder-{ticket.aggregate_id}".encode()

        async with asyncio.timeout(10):
            while True:
                rows = (
                    await http.get("/v1/seen", headers={"Authorization": f"Bearer {token}"})
                ).json()
                if rows and rows[0]["reminded"]:
                    break
                await asyncio.sleep(0.05)
        assert rows == [{"ticket_id": str(ticket.aggregate_id), "subject": ticket.payload.subject,
                         "reminded": True}]  # fmt: skip
        assert (await http.get("/v1/seen")).status_code == 401
        # The relay counts a record once the broker acknowledged it, which may be after
        # the consumer above has read it: wait for the count.
        produced = f'event_type="TicketSubmitted",topic="{reminders_topic}"'

        async def counted() -> bool:
            metrics = (await http.get("/metrics")).text
            return f"helpdesk_events_produced_total{{{produced}}} 1.0" in metrics

        await eventually(counted, timeout_s=10)
        metrics = (await http.get("/metrics")).text
        assert 'helpdesk_timers_fired_total{kind="remind"} 1.0' in metrics

    conn = await asyncpg.connect(empty_database_url)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    finally:
        await conn.close()
    # No events table: this service is not event-sourced.
    assert tables == {
        "seen", "schema_migrations", "inbox", "outbox", "outbox_checkpoints", "timers",
        "audit_log",
    }  # fmt: skip
