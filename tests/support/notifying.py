"""The notifications integration tests' rig: the handlers against the real PostgreSQL and
a real SMTP server, driven step by step (a clock the test moves, timers fired when the
test says)."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from helpdesk_contracts import EventEnvelope, Requester, parse_envelope
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.keyring import KeyRing
from helpdesk_runtime.personal_data import SubjectKeys, sealed_payload
from helpdesk_runtime.settings import DEV_PII_MASTER_KEYS
from helpdesk_runtime.timer_scheduler import TimerScheduler
from notifications.bootstrap import notifier
from notifications.config import Settings
from notifications.handlers import DELIVER, Notifier

from support.mail import Mailbox, smtp_server


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    pool: asyncpg.Pool
    mailbox: Mailbox
    notifier: Notifier
    clock: Clock
    timers: TimerScheduler
    settings: Settings

    async def publish(self, *events: EventEnvelope[Any], subject: str = "c-1") -> None:
        """The events as the consumer gets them (sealed), applied as one batch."""
        async with self.pool.acquire() as conn, conn.transaction():
            batch = [await _sealed(conn, self.notifier.keys, e, subject) for e in events]
            await self.notifier.record_notices(conn, batch)

    async def fire(self) -> int:
        return await self.timers.fire_due()

    async def delivery(self, ticket: UUID) -> asyncpg.Record:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT state, attempts, last_error, delivery_id FROM deliveries"
                " WHERE ticket_id = $1", ticket,
            )  # fmt: skip
        assert row is not None
        return row

    async def outcomes(self, delivery_id: UUID) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT outcome FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
                delivery_id,
            )
        return [r["outcome"] for r in rows]


async def _sealed(conn: Any, keys: SubjectKeys, envelope: EventEnvelope[Any], subject: str) -> Any:
    found = await keys.for_sealing(conn, [(envelope.tenant_id, subject)])
    document = json.loads(envelope.to_json())
    document["payload"] = json.loads(sealed_payload(envelope, found[(envelope.tenant_id, subject)]))
    return parse_envelope(document)


def with_requester(event: EventEnvelope[Any], requester: Requester) -> EventEnvelope[Any]:
    return event.model_copy(
        update={"payload": event.payload.model_copy(update={"requester": requester})}
    )


@asynccontextmanager
async def rig_for(database_url: str, **overrides: Any) -> AsyncIterator[Rig]:
    """A rig on this database; `overrides` are Settings fields (webhook, messenger...)."""
    clock = Clock()
    async with smtp_server() as mailbox:
        settings = Settings.model_validate({
            "smtp_port": mailbox.port, "retry_base_s": 10, "retry_max_s": 60,
            "retry_attempts": 3, "smtp_timeout_s": 5, **overrides,
        })  # fmt: skip
        handlers = notifier(settings, SubjectKeys(KeyRing.parse(DEV_PII_MASTER_KEYS)), clock)
        pool = await create_pool(database_url)
        timers = TimerScheduler(
            pool, dict.fromkeys(DELIVER.values(), handlers.deliver), clock=clock
        )
        try:
            yield Rig(pool, mailbox, handlers, clock, timers, settings)
        finally:
            await pool.close()


async def contact(rig: Rig, person: str, **columns: Any) -> None:
    names = ", ".join(columns)
    marks = ", ".join(f"${i}" for i in range(3, 3 + len(columns)))
    async with rig.pool.acquire() as conn:
        await conn.execute(
            f"INSERT INTO contacts (tenant_id, person, {names}) VALUES ($1, $2, {marks})",
            "acme", person, *columns.values(),
        )  # fmt: skip


def ticket_event(ticket: UUID, version: int, payload: Any) -> EventEnvelope[Any]:
    return EventEnvelope.new(payload, tenant_id="acme", producer="ticketing",
                             aggregate_id=ticket, aggregate_version=version)  # fmt: skip


async def states(rig: Rig, event_id: UUID) -> dict[str, tuple[str, str | None]]:
    async with rig.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT recipient, state, last_error FROM deliveries WHERE event_id = $1", event_id
        )
    return {r["recipient"]: (r["state"], r["last_error"]) for r in rows}
