"""The one place where the feedback service is wired together."""

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI

from feedback import api, goals_api, pages
from feedback.config import Settings
from feedback.handlers import (
    DIRECTORY_ACCEPTS,
    INVITE,
    RECEIVED_ACCEPTS,
    SLA_ACCEPTS,
    TICKETS_ACCEPTS,
    FeedbackHandlers,
)
from feedback.tokens import Links
from helpdesk_contracts import TOPICS, dead_letter_topic
from helpdesk_runtime.db import load_migrations
from helpdesk_runtime.http import create_app as create_service_app
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.kafka import TopicSpec
from helpdesk_runtime.outbox import Source
from helpdesk_runtime.service import ConsumerSpec, ServiceRuntime
from helpdesk_runtime.tenants import TenantRegistry

DEAD_LETTER_PARTITIONS = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


def handlers_of(settings: Settings, clock: Callable[[], datetime]) -> FeedbackHandlers:
    assert settings.survey_link_secret is not None  # the settings insist
    links = Links(settings.survey_link_secret.get_secret_value())
    return FeedbackHandlers(links, settings.public_base_url, clock)


def build_runtime(
    settings: Settings, clock: Callable[[], datetime] = _utc_now,
    handlers: FeedbackHandlers | None = None,
) -> ServiceRuntime:  # fmt: skip
    handlers = handlers or handlers_of(settings, clock)
    # What it reads: (topic, the contract's topic it stands for, group, handler, events, why).
    reads = [
        (settings.tickets_topic, "ticketing.tickets.v2", settings.tickets_group_id,
         handlers.ticket_events, TICKETS_ACCEPTS,
         "Ticket events: who asked and answered, and when a ticket is solved (a survey)"),
        (settings.received_topic, "feedback.received.v1", settings.received_group_id,
         handlers.answers, RECEIVED_ACCEPTS,
         "Survey answers from other systems (and our page's, applied once)"),
        (settings.directory_topic, "ticketing.directory.v1", settings.directory_group_id,
         handlers.directory, DIRECTORY_ACCEPTS, "Erased customers: their comments blanked"),
        (settings.sla_topic, "sla.events.v1", settings.sla_group_id, handlers.sla_events,
         SLA_ACCEPTS, "SLA verdicts: breaches for customer health, elapsed times for goals"),
    ]  # fmt: skip
    # What it publishes: event type -> topic.
    routes = {
        "SurveyRequested": settings.surveys_topic,
        "FeedbackReceived": settings.received_topic,
        "NegativeFeedbackFlagged": settings.events_topic,
        "CustomerAtRisk": settings.events_topic,
    }
    published = [(settings.surveys_topic, "feedback.surveys.v1"),
                 (settings.events_topic, "feedback.events.v1")]  # fmt: skip
    return ServiceRuntime(
        settings,
        migrations=load_migrations("feedback", "feedback"),
        # Created if missing, as the contracts size them, so it can start before the
        # producers of what it reads have created their topics; each read with dead letters.
        topics=[
            *(TopicSpec(topic, TOPICS[contract].partitions) for topic, contract, *_ in reads),
            *(TopicSpec(topic, TOPICS[contract].partitions) for topic, contract in published),
            *(TopicSpec(dead_letter_topic(topic), DEAD_LETTER_PARTITIONS) for topic, *_ in reads),
        ],
        route=routes.__getitem__,
        publish_from=Source.OUTBOX,
        consumers=[
            ConsumerSpec(
                topic=topic,
                group_id=group,
                handler=handler,
                accepts=accepts,
                description=description,
            )
            for topic, _, group, handler, accepts, description in reads
        ],
        timers={INVITE: handlers.invite},
        jobs={"customer-health": lambda runtime: handlers.health_job(runtime.pool)},
        tenants=TenantRegistry.REPLICA,  # who may call: ticketing's registry, replicated
    )


def create_app(
    settings: Settings | None = None, clock: Callable[[], datetime] = _utc_now
) -> FastAPI:
    """The feedback service: HTTP API and survey page, consumers, survey timers, outbox relay."""
    settings = settings or Settings()
    handlers = handlers_of(settings, clock)
    runtime = build_runtime(settings, clock, handlers)

    def routers(auth: HttpAuth) -> list[APIRouter]:
        deps = api.ApiDeps.of(runtime, auth, clock)
        page = pages.PageDeps(
            transaction=runtime.transaction, connection=lambda: runtime.pool.acquire(),
            clock=clock, handlers=handlers, default_language=settings.default_language,
            views_per_minute=settings.page_views_per_minute,
            posts_per_minute=settings.page_posts_per_minute,
        )  # fmt: skip
        return [api.router(deps), goals_api.router(deps), pages.router(page)]

    return create_service_app(
        runtime,
        title="Feedback API",
        version="0.1.0",
        description="Survey settings, scores and trends, answers, bad feedback to follow up;"
        " and the customers' survey page.",
        api=routers,
    )
