"""The one place where the SLA service is wired together."""

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI

from helpdesk_contracts import TOPICS, dead_letter_topic
from helpdesk_runtime.db import load_migrations
from helpdesk_runtime.http import create_app as create_service_app
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.kafka import TopicSpec
from helpdesk_runtime.outbox import Source
from helpdesk_runtime.service import ConsumerSpec, ServiceRuntime
from helpdesk_runtime.tenants import TenantRegistry
from sla import api
from sla.config import Settings
from sla.configuration import Catalogue
from sla.handlers import ACCEPTS, ALARM, SLA_TOPIC, TICKETS_TOPIC, SlaHandlers
from sla.watermark_watch import WatermarkWatch

DEAD_LETTER_PARTITIONS = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_runtime(
    settings: Settings,
    clock: Callable[[], datetime] = _utc_now,
    handlers: SlaHandlers | None = None,
) -> ServiceRuntime:
    handlers = handlers or SlaHandlers(Catalogue(), clock)
    watch: WatermarkWatch | None = None

    async def watch_watermarks(runtime: ServiceRuntime) -> None:
        nonlocal watch  # made once: its gauges are registered once, however often it restarts
        if watch is None:
            watch = WatermarkWatch(runtime.pool, clock, runtime.metrics.registry,
                                   stall_s=settings.watermark_stall_s)  # fmt: skip
        await watch.run()

    published, read = TOPICS[SLA_TOPIC], TOPICS[TICKETS_TOPIC]
    sla_topic, tickets_topic = settings.sla_topic, settings.tickets_topic
    return ServiceRuntime(
        settings,
        migrations=load_migrations("sla", "sla"),
        # Created if missing, as the contracts size them: the topic it reads too, so it can
        # start before ticketing has created it.
        topics=[
            TopicSpec(sla_topic, published.partitions),
            TopicSpec(tickets_topic, read.partitions),
            TopicSpec(dead_letter_topic(tickets_topic), DEAD_LETTER_PARTITIONS),
        ],
        route=lambda _event_type: sla_topic,
        publish_from=Source.OUTBOX,
        consumers=[
            ConsumerSpec(
                topic=tickets_topic,
                group_id=settings.tickets_group_id,
                handler=handlers.ticket_events,
                accepts=ACCEPTS,
                description="Every ticket's events: they start, pause and stop its clocks",
            )
        ],
        timers={ALARM: handlers.alarms},
        jobs={
            "watermark-watch": watch_watermarks,
            "breach-sweep": lambda runtime: handlers.sweep_breaches(runtime.pool, idle_s=1.0),
        },
        tenants=TenantRegistry.REPLICA,  # who may call: ticketing's registry, replicated
    )


def create_app(
    settings: Settings | None = None, clock: Callable[[], datetime] = _utc_now
) -> FastAPI:
    """The SLA service: HTTP API, ticket-events consumer, alarms and outbox relay (see PARTS)."""
    settings = settings or Settings()
    catalogue = Catalogue()
    handlers = SlaHandlers(catalogue, clock)
    runtime = build_runtime(settings, clock, handlers)

    def routers(auth: HttpAuth) -> list[APIRouter]:
        deps = api.ApiDeps.of(
            runtime,
            auth,
            clock,
            catalogue=catalogue,
            stall_s=settings.watermark_stall_s,
            handlers=handlers,
        )
        return [api.router(deps)]

    return create_service_app(
        runtime,
        title="SLA API",
        version="0.1.0",
        description="SLA policies, business calendars and every ticket's clocks.",
        api=routers,
    )
