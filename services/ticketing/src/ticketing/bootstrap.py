"""The one place where the ticketing service is wired together."""

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from helpdesk_contracts import TOPICS, TicketSubmitted, dead_letter_topic, topic_for
from helpdesk_runtime.db import load_migrations
from helpdesk_runtime.feed import AppendFeed
from helpdesk_runtime.http import (
    CorrelationIdMiddleware,
    health_router,
    install_error_handlers,
)
from helpdesk_runtime.kafka import TopicSpec
from helpdesk_runtime.service import ConsumerSpec, ServiceRuntime
from ticketing import api
from ticketing.auth import TokenVerifier
from ticketing.config import Settings
from ticketing.intake import ACCEPTS, intake_handler

INTAKE_TOPIC = topic_for(TicketSubmitted.event_type).name
TICKETS_TOPIC = "ticketing.tickets.v1"
DEAD_LETTER_PARTITIONS = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_runtime(settings: Settings, clock: Callable[[], datetime] = _utc_now) -> ServiceRuntime:
    owned = [TOPICS[INTAKE_TOPIC], TOPICS[TICKETS_TOPIC]]
    topics = [TopicSpec(t.name, t.partitions) for t in owned]
    topics += [TopicSpec(dead_letter_topic(t.name), DEAD_LETTER_PARTITIONS) for t in owned]
    return ServiceRuntime(
        settings,
        migrations=load_migrations("ticketing", "ticketing"),
        topics=topics,
        route=lambda event_type: topic_for(event_type).name,
        consumers=[
            ConsumerSpec(
                topic=INTAKE_TOPIC,
                group_id=settings.intake_group_id,
                handler=intake_handler(clock),
                accepts=ACCEPTS,
                description="Tickets and customers' messages from other company systems",
            )
        ],
    )


def create_app(
    settings: Settings | None = None, clock: Callable[[], datetime] = _utc_now
) -> FastAPI:
    """The ticketing service: HTTP API, intake consumer and outbox relay in one process."""
    settings = settings or Settings()
    runtime = build_runtime(settings, clock)
    app = FastAPI(
        title="Ticketing API",
        version="0.1.0",
        description="Tickets kept as an event log: open them, read their state.",
        lifespan=runtime.lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(CorrelationIdMiddleware)
    install_error_handlers(app)
    app.include_router(health_router(runtime))
    verifier = TokenVerifier(settings)  # a key configuration that cannot work fails here
    deps = api.ApiDeps(
        pool=lambda: runtime.pool,
        clock=clock,
        verifier=lambda: verifier,
        feed=lambda: _started(runtime.feed),
    )
    app.include_router(api.router(deps))
    return app


def _started(feed: AppendFeed | None) -> AppendFeed:
    if feed is None:
        raise RuntimeError("the service runtime is not started")
    return feed
