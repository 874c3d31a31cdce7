"""The one place where the ticketing service is wired together."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI

from helpdesk_contracts import (
    RETIRED_TOPICS,
    TOPICS,
    TicketSubmitted,
    dead_letter_topic,
    publisher_intake_topic,
    rejections_topic,
    topic_for,
)
from helpdesk_contracts.topics import PLAIN_TEXT_RETENTION_DAYS
from helpdesk_runtime.db import load_migrations
from helpdesk_runtime.feed import AppendFeed
from helpdesk_runtime.http import create_app as create_service_app
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.kafka import TopicSpec
from helpdesk_runtime.personal_data import SubjectKeys
from helpdesk_runtime.service import ConsumerSpec, ServiceRuntime
from helpdesk_runtime.tenants import TenantRegistry
from ticketing import api, feedback_feed, sla_feed, unattached
from ticketing.config import Settings
from ticketing.intake import (
    ACCEPTS,
    DIRECTORY_SYNC_ACCEPTS,
    DIRECTORY_SYNC_TOPIC,
    directory_sync_handler,
    intake_handler,
)
from ticketing.unit_of_work import UnitOfWork, unit_of_work

INTAKE_TOPIC = topic_for(TicketSubmitted.event_type).name
TICKETS_TOPIC = "ticketing.tickets.v2"
DIRECTORY_TOPIC = "ticketing.directory.v1"
DEAD_LETTER_PARTITIONS = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_runtime(settings: Settings, clock: Callable[[], datetime] = _utc_now) -> ServiceRuntime:
    # Created if missing, as the contracts size them: its own topics, and the SLA and
    # feedback topics it reads (so that any service may start first), each with its dead
    # letters.
    known = [TOPICS[INTAKE_TOPIC], TOPICS[TICKETS_TOPIC], TOPICS[sla_feed.SLA_TOPIC],
             TOPICS[DIRECTORY_TOPIC], TOPICS[DIRECTORY_SYNC_TOPIC],
             TOPICS[feedback_feed.FEEDBACK_TOPIC]]  # fmt: skip
    topics = [TopicSpec(t.name, t.partitions, t.retention_days) for t in known]
    # Dead letters keep the original bytes: as long as their topic, never longer.
    topics += [
        TopicSpec(dead_letter_topic(t.name), DEAD_LETTER_PARTITIONS, t.retention_days)
        for t in known
    ]
    # Each outside publisher's own intake topic; it reads why a message was refused on its
    # rejections topic (plain text others sent: kept as long as the intake topic).
    intake = TOPICS[INTAKE_TOPIC]
    for name in sorted(settings.intake_publishers):
        topic = publisher_intake_topic(name)
        topics += [
            TopicSpec(topic, intake.partitions, intake.retention_days),
            TopicSpec(dead_letter_topic(topic), DEAD_LETTER_PARTITIONS, intake.retention_days),
            TopicSpec(rejections_topic(topic), DEAD_LETTER_PARTITIONS, intake.retention_days),
        ]
    # What the retired versions hold (personal data in plain text) ages out.
    topics += [
        TopicSpec(name, TOPICS[newer].partitions, PLAIN_TEXT_RETENTION_DAYS, retired=True)
        for old, newer in RETIRED_TOPICS.items()
        for name in (old, dead_letter_topic(old))
    ]
    keys = SubjectKeys(settings.key_ring())
    return ServiceRuntime(
        settings,
        migrations=load_migrations("ticketing", "ticketing"),
        topics=topics,
        route=lambda event_type: topic_for(event_type).name,
        consumers=[
            ConsumerSpec(
                topic=INTAKE_TOPIC,
                group_id=settings.intake_group_id,
                handler=intake_handler(clock, keys),
                accepts=ACCEPTS,
                description="Tickets and customers' messages from other company systems",
            ),
            *(
                ConsumerSpec(
                    topic=publisher_intake_topic(name),
                    group_id=settings.intake_group_id,
                    handler=intake_handler(clock, keys, publisher=name),
                    accepts=ACCEPTS,
                    description=f"Tickets and customers' messages from {name}",
                    rejections=True,
                )
                for name in sorted(settings.intake_publishers)
            ),
            ConsumerSpec(
                topic=DIRECTORY_SYNC_TOPIC,
                group_id=settings.directory_group_id,
                handler=directory_sync_handler(clock, keys),
                accepts=DIRECTORY_SYNC_ACCEPTS,
                description="Customers and organisations from other company systems (a CRM)",
            ),
            ConsumerSpec(
                topic=sla_feed.SLA_TOPIC,
                group_id=settings.sla_group_id,
                handler=sla_feed.apply,
                accepts=sla_feed.ACCEPTS,
                description="SLA clocks: each ticket's next deadline in the list",
            ),
            ConsumerSpec(
                topic=feedback_feed.FEEDBACK_TOPIC,
                group_id=settings.feedback_group_id,
                handler=feedback_feed.feedback_handler(clock, keys),
                accepts=feedback_feed.ACCEPTS,
                description="Bad feedback: a solved ticket reopened when the tenant asks for it",
            ),
        ],
        # The SLA service declares a breach only once a watermark says no event that could
        # have stopped the clock in time is still on its way.
        watermarks=[TICKETS_TOPIC],
        blobs=True,  # attachments
        jobs={"unattached-uploads": lambda runtime: unattached.run(runtime, settings, clock)},
        subject_keys=keys,
        tenants=TenantRegistry.OWNER,  # `python -m ticketing tenants ...`, published
    )


def create_app(
    settings: Settings | None = None, clock: Callable[[], datetime] = _utc_now
) -> FastAPI:
    """The ticketing service: HTTP API, intake consumer and outbox relay (see PARTS)."""
    settings = settings or Settings()
    runtime = build_runtime(settings, clock)
    keys = _keys(runtime)

    @asynccontextmanager
    async def transaction() -> AsyncIterator[UnitOfWork]:
        async with runtime.pool.acquire() as conn, conn.transaction():
            yield unit_of_work(conn, keys)

    def routers(auth: HttpAuth) -> list[APIRouter]:
        deps = api.ApiDeps(
            transaction=transaction,
            connection=lambda: runtime.pool.acquire(),
            clock=clock,
            auth=auth,
            feed=lambda: _started(runtime.feed),
            blobs=lambda: runtime.blobs,
            attachments=settings.attachment_policy,
            keys=keys,
        )
        return [api.router(deps)]

    return create_service_app(
        runtime,
        title="Ticketing API",
        version="0.1.0",
        description="Tickets kept as an event log: open them, work them, read their state.",
        api=routers,
        live_stream=True,
        # An upload's form parts around the file: a few KiB are plenty.
        body_limits={"/v1/attachments": settings.attachment_max_bytes + 64 * 1024},
    )


def _keys(runtime: ServiceRuntime) -> SubjectKeys:
    assert runtime.subject_keys is not None  # build_runtime gives it
    return runtime.subject_keys


def _started(feed: AppendFeed | None) -> AppendFeed:
    if feed is None:
        raise RuntimeError("the service runtime is not started")
    return feed
