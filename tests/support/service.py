"""Runs the real services (uvicorn, HTTP on a free port) for end-to-end tests."""

import asyncio
import contextvars
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import uuid4

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from feedback.bootstrap import create_app as create_feedback_app
from feedback.config import Settings as FeedbackSettings
from helpdesk_contracts import EventEnvelope, TenantChanged, tenant_stream
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.service import ServiceRuntime
from helpdesk_runtime.settings import ServiceSettings
from helpdesk_runtime.tenants import replicate
from helpdesk_runtime.tokens import mint
from notifications.bootstrap import create_app as create_notifications_app
from notifications.config import Settings as NotificationsSettings
from sla.bootstrap import create_app as create_sla_app
from sla.config import Settings as SlaSettings
from sla.handlers import SLA_TOPIC, TICKETS_TOPIC
from ticketing import tenants
from ticketing.bootstrap import INTAKE_TOPIC, create_app
from ticketing.config import Settings
from ticketing.feedback_feed import FEEDBACK_TOPIC
from ticketing.intake import DIRECTORY_SYNC_TOPIC

from support.fixtures import start_group_at_end, topic_exists
from support.privacy import opened_with

S = TypeVar("S", bound=ServiceSettings)
AGENTS_TENANTS = ("acme", "globex")


@dataclass(frozen=True)
class RunningService(Generic[S]):
    base_url: str
    client: httpx.AsyncClient
    settings: S
    runtime: ServiceRuntime

    async def register_tenant(self, tenant_id: str) -> None:
        """Provision a tenant, as ops would with `python -m ticketing tenants add`."""
        await register_tenants(self.settings.database_url.get_secret_value(), [tenant_id])

    async def opened(self, value: bytes) -> EventEnvelope[Any]:
        """A published event with its personal data opened, as a reader holding the
        subjects' keys (the service's own) sees it."""
        assert self.runtime.subject_keys is not None, "this service seals no personal data"
        url = self.settings.database_url.get_secret_value()
        return await opened_with(url, value, self.runtime.subject_keys)

    def auth(
        self, tenant: str = "acme", agent: str = "agent-7", role: str = "agent"
    ) -> dict[str, str]:
        """Headers of a signed-in agent (a real JWT, signed with the service's secret)."""
        token = mint(self.settings, Principal(tenant, agent, Role(role)), ttl_s=600)
        return {"Authorization": f"Bearer {token}"}


async def register_tenants(database_url: str, tenant_ids: Sequence[str]) -> None:
    """Provision tenants in ticketing's database, as ops would (`tenants add`)."""
    conn = await asyncpg.connect(database_url)
    try:
        for tenant in tenant_ids:
            await tenants.add(conn, tenant, f"Tenant {tenant}")
    finally:
        await conn.close()


def tenant_record(tenant_id: str, suspended: bool = False) -> EventEnvelope[Any]:
    """What ticketing publishes of a tenant (helpdesk_runtime.tenants)."""
    payload = TenantChanged(
        name=f"Tenant {tenant_id}", suspended_at=datetime.now(UTC) if suspended else None
    )
    return EventEnvelope.new(payload, tenant_id=tenant_id, producer="ticketing",
                             aggregate_id=tenant_stream(tenant_id))  # fmt: skip


async def _from_now_on(kafka_bootstrap: str, subscriptions: Sequence[tuple[str, str]]) -> None:
    """Each (topic, group) reads what is published from now on, not what earlier tests left
    (a topic nobody has created yet holds nothing to skip)."""
    for topic, group in subscriptions:
        if await topic_exists(kafka_bootstrap, topic):
            await start_group_at_end(kafka_bootstrap, topic, group)


async def _tenants_replicated(database_url: str) -> None:
    """As if ticketing.tenants.v1 had told the service: its API refuses other tenants' tokens."""
    conn = await asyncpg.connect(database_url)
    try:
        await replicate(conn, [tenant_record(tenant) for tenant in AGENTS_TENANTS])
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def ticketing_service(
    database_url: str, kafka_bootstrap: str, *, connected: bool = True,
    clock: Callable[[], datetime] | None = None, **overrides: Any,
) -> AsyncIterator[RunningService[Settings]]:  # fmt: skip
    """The service on a free port; `overrides` are Settings fields (e.g. cors_origins), and
    `clock` stamps its events (the real time by default).

    With `connected`, it yields once Kafka is connected (consumers in their group)."""
    port = free_port()
    group_id = f"ticketing-intake-{uuid4().hex[:8]}"
    sla_group_id = f"ticketing-sla-{uuid4().hex[:8]}"
    directory_group_id = f"ticketing-directory-{uuid4().hex[:8]}"
    feedback_group_id = f"ticketing-feedback-{uuid4().hex[:8]}"
    settings = Settings.model_validate(
        {
            "database_url": SecretStr(database_url),
            "kafka_bootstrap_servers": kafka_bootstrap,
            "intake_group_id": group_id,
            "sla_group_id": sla_group_id,
            "directory_group_id": directory_group_id,
            "feedback_group_id": feedback_group_id,
            "http_port": port,
            "consumer_batch_timeout_ms": 50,
            "outbox_poll_interval_s": 0.2,
            "log_format": "console",
            "shutdown_grace_s": 5.0,
            **overrides,
        }
    )
    # The tenants the tests' agents belong to: the API refuses tokens of any other.
    await register_tenants(database_url, AGENTS_TENANTS)
    if connected:
        await _from_now_on(kafka_bootstrap, [
            (INTAKE_TOPIC, group_id), (SLA_TOPIC, sla_group_id),
            (DIRECTORY_SYNC_TOPIC, directory_group_id), (FEEDBACK_TOPIC, feedback_group_id),
        ])  # fmt: skip
    app = create_app(settings) if clock is None else create_app(settings, clock)
    async with serving(app, settings, connected=connected) as running:
        yield running


@asynccontextmanager
async def sla_service(
    database_url: str, kafka_bootstrap: str, *, group_id: str | None = None, **overrides: Any
) -> AsyncIterator[RunningService[SlaSettings]]:
    """The SLA service on a free port, reading the ticket events published from now on
    (or, given the `group_id` of an earlier run, from where that run stopped)."""
    fresh = group_id is None
    group_id = group_id or f"sla-tickets-{uuid4().hex[:8]}"
    settings = SlaSettings.model_validate(
        {
            "database_url": SecretStr(database_url),
            "kafka_bootstrap_servers": kafka_bootstrap,
            "tickets_group_id": group_id,
            "http_port": free_port(),
            "consumer_batch_timeout_ms": 50,
            "outbox_poll_interval_s": 0.2,
            "timer_poll_interval_s": 0.2,
            "log_format": "console",
            "shutdown_grace_s": 5.0,
            **overrides,
        }
    )
    if fresh:
        await _from_now_on(kafka_bootstrap, [(TICKETS_TOPIC, group_id)])
    await _tenants_replicated(database_url)
    async with serving(create_sla_app(settings), settings) as running:
        yield running


@asynccontextmanager
async def feedback_service(
    database_url: str, kafka_bootstrap: str, *, group_id: str | None = None, **overrides: Any
) -> AsyncIterator[RunningService[FeedbackSettings]]:
    """The feedback service on a free port, reading what is published from now on (or,
    given the `group_id` of an earlier run, from where that run stopped)."""
    fresh = group_id is None
    group_id = group_id or f"feedback-{uuid4().hex[:8]}"
    settings = FeedbackSettings.model_validate(
        {
            "database_url": SecretStr(database_url),
            "kafka_bootstrap_servers": kafka_bootstrap,
            "tickets_group_id": f"{group_id}-tickets",
            "received_group_id": f"{group_id}-received",
            "directory_group_id": f"{group_id}-directory",
            "sla_group_id": f"{group_id}-sla",
            "http_port": (port := free_port()),
            "public_base_url": f"http://127.0.0.1:{port}",
            "consumer_batch_timeout_ms": 50,
            "outbox_poll_interval_s": 0.2,
            "timer_poll_interval_s": 0.2,
            "log_format": "console",
            "shutdown_grace_s": 5.0,
            **overrides,
        }
    )
    if fresh:
        await _from_now_on(kafka_bootstrap, [
            (settings.tickets_topic, settings.tickets_group_id),
            (settings.received_topic, settings.received_group_id),
            (settings.directory_topic, settings.directory_group_id),
            (settings.sla_topic, settings.sla_group_id),
        ])  # fmt: skip
    await _tenants_replicated(database_url)
    async with serving(create_feedback_app(settings), settings) as running:
        yield running


@asynccontextmanager
async def notifications_service(
    database_url: str, kafka_bootstrap: str, smtp_port: int, *, group_id: str | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningService[NotificationsSettings]]:  # fmt: skip
    """The notifications service on a free port, sending mail to `smtp_port`, reading what
    is published from now on (or, given the `group_id` of an earlier run, from where that
    run stopped: it names all its groups)."""
    fresh = group_id is None
    group_id = group_id or f"notifications-{uuid4().hex[:8]}"
    settings = NotificationsSettings.model_validate(
        {
            "database_url": SecretStr(database_url),
            "kafka_bootstrap_servers": kafka_bootstrap,
            "tickets_group_id": f"{group_id}-tickets",
            "surveys_group_id": f"{group_id}-surveys",
            "sla_group_id": f"{group_id}-sla",
            "directory_group_id": f"{group_id}-directory",
            "feedback_events_group_id": f"{group_id}-feedback-events",
            "http_port": free_port(),
            "smtp_port": smtp_port,
            "inbound_smtp_port": free_port(),
            "consumer_batch_timeout_ms": 50,
            "timer_poll_interval_s": 0.2,
            "log_format": "console",
            "shutdown_grace_s": 5.0,
            **overrides,
        }
    )
    if fresh:
        await _from_now_on(kafka_bootstrap, [
            (settings.tickets_topic, settings.tickets_group_id),
            (settings.surveys_topic, settings.surveys_group_id),
            (settings.sla_topic, settings.sla_group_id),
            (settings.directory_topic, settings.directory_group_id),
            (settings.feedback_events_topic, settings.feedback_events_group_id),
        ])  # fmt: skip
    await _tenants_replicated(database_url)
    async with serving(create_notifications_app(settings), settings) as running:
        yield running


@asynccontextmanager
async def serving(
    app: FastAPI, settings: S, *, connected: bool = True
) -> AsyncIterator[RunningService[S]]:
    """Serve `app` on `settings.http_port` until the block ends."""
    port = settings.http_port
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    # In a context of its own, as in a process of its own: the tests' scope (every tenant,
    # tests/conftest.py) must not reach the service, whose code sets its own.
    task = asyncio.create_task(server.serve(), context=contextvars.Context())
    async with asyncio.timeout(60):
        while not server.started:
            if task.done():
                task.result()  # raises the start-up error
            await asyncio.sleep(0.05)
    base_url = f"http://127.0.0.1:{port}"
    try:
        if connected:
            await app.state.runtime.connected()  # the consumers joined their group, jobs run
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            yield RunningService(base_url, client, settings, app.state.runtime)
    finally:  # also when the test failed: never leave a server running on a dropped database
        server.should_exit = True
        await task


TicketingService = RunningService[Settings]
NotificationsService = RunningService[NotificationsSettings]
SlaService = RunningService[SlaSettings]
FeedbackService = RunningService[FeedbackSettings]
