"""The one place where the notifications service is wired together."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, FastAPI
from prometheus_client import Counter
from purgatory import AsyncCircuitBreakerFactory

from helpdesk_contracts import TOPICS, dead_letter_topic
from helpdesk_runtime.db import load_migrations
from helpdesk_runtime.http import create_app as create_service_app
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.kafka import TopicSpec
from helpdesk_runtime.key_distribution import KeyRole
from helpdesk_runtime.personal_data import SubjectKeys
from helpdesk_runtime.service import ConsumerSpec, JobFactory, ServiceRuntime
from helpdesk_runtime.tenants import TenantRegistry
from helpdesk_runtime.timer_scheduler import TimerLane
from helpdesk_runtime.tokens import ServiceTokens
from notifications import api
from notifications.attachments import TicketingFiles
from notifications.channels import Sender
from notifications.config import Settings
from notifications.domain.notices import Lane
from notifications.domain.preferences import Channel
from notifications.domain.retries import Backoff
from notifications.email import Dkim, EmailSender, MailIdentity, SmtpServer
from notifications.guard import Guarded, host_of
from notifications.handlers import (
    ACCEPTS,
    DELIVER,
    DIRECTORY_ACCEPTS,
    FEEDBACK_ACCEPTS,
    SLA_ACCEPTS,
    SURVEY_ACCEPTS,
    Notifier,
)
from notifications.inbound_mail import InboundMail, listen
from notifications.messengers import TelegramSender
from notifications.rendering import Templates
from notifications.unsubscribe import token_for
from notifications.webhooks import WebhookSender

DEAD_LETTER_PARTITIONS = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


def notifier(settings: Settings, keys: SubjectKeys, clock: Callable[[], datetime]) -> Notifier:
    """The handlers, with a sender per configured channel, each behind its guard."""
    assert settings.reply_address_secret is not None  # the settings insist
    assert settings.webhook_signing_secret is not None
    breakers = AsyncCircuitBreakerFactory(
        default_threshold=settings.breaker_threshold, default_ttl=settings.breaker_open_s
    )
    smtp = SmtpServer(
        settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_username,
        settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        settings.smtp_timeout_s, settings.smtp_connections,
    )  # fmt: skip
    identity = identity_of(settings)
    senders: dict[Channel, Sender] = {
        Channel.EMAIL: Guarded(
            "email", EmailSender(smtp, identity), lambda _: f"{smtp.host}:{smtp.port}",
            breakers=breakers, per_second=settings.email_per_second,
        ),
        Channel.WEBHOOK: Guarded(
            "webhook", WebhookSender(settings.webhook_signing_secret.get_secret_value(),
                                     timeout_s=settings.webhook_timeout_s,
                                     private_targets=settings.webhook_private_targets),
            host_of, breakers=breakers, per_second=settings.webhook_per_second,
        ),
    }  # fmt: skip
    if settings.telegram_bot_token is not None:
        telegram = TelegramSender(settings.telegram_bot_token.get_secret_value(),
                                  api_base=settings.telegram_api_base)  # fmt: skip
        senders[Channel.MESSENGER] = Guarded(
            "messenger", telegram, lambda _: settings.telegram_api_base,
            breakers=breakers, per_second=settings.messenger_per_second,
        )  # fmt: skip
    return Notifier(
        keys=keys,
        templates=Templates(settings.default_language),
        senders={channel.value: sender for channel, sender in senders.items()},
        sender_name=settings.mail_from_name,
        unsubscribe_link=lambda opt_out: (
            f"{settings.public_base_url.rstrip('/')}/v1/unsubscribe/"
            f"{token_for(unsubscribe_secret(settings), opt_out)}"
        ),
        backoff=Backoff(settings.retry_base_s, settings.retry_max_s, settings.retry_attempts),
        clock=clock,
        stale_after=timedelta(seconds=settings.notify_within_s),
    )


def identity_of(settings: Settings) -> MailIdentity:
    assert settings.reply_address_secret is not None  # the settings insist
    signing = (
        Dkim(settings.dkim_domain or settings.mail_domain, settings.dkim_selector,
             settings.dkim_private_key.get_secret_value().encode())
        if settings.dkim_private_key is not None else None
    )  # fmt: skip
    return MailIdentity(
        settings.mail_from_address, settings.mail_from_name, settings.mail_domain,
        settings.reply_domain, settings.reply_address_secret.get_secret_value().encode(), signing,
    )  # fmt: skip


def unsubscribe_secret(settings: Settings) -> bytes:
    assert settings.reply_address_secret is not None
    return settings.reply_address_secret.get_secret_value().encode()


def build_runtime(
    settings: Settings, clock: Callable[[], datetime] = _utc_now, handlers: Notifier | None = None
) -> ServiceRuntime:
    keys = handlers.keys if handlers is not None else SubjectKeys(settings.key_ring())
    handlers = handlers or notifier(settings, keys, clock)

    async def inbound_mail(runtime: ServiceRuntime) -> None:
        files = TicketingFiles(settings.ticketing_url, ServiceTokens(settings),
                               settings.ticketing_timeout_s)  # fmt: skip
        inbound = InboundMail(runtime.pool, runtime.producer, identity_of(settings),
                              settings.intake_topic, clock, keys, files,
                              runtime.tracer)  # fmt: skip
        try:
            await listen(inbound, settings.inbound_smtp_host, settings.inbound_smtp_port,
                         settings.inbound_max_bytes)  # fmt: skip
        finally:
            await files.aclose()

    jobs: dict[str, JobFactory] = (
        {"inbound-mail": inbound_mail} if settings.inbound_smtp_port else {}
    )
    # What it reads: (topic, the contract's topic it stands for, group, events, what for).
    reads = [
        (settings.tickets_topic, "ticketing.tickets.v2", settings.tickets_group_id, ACCEPTS,
         "Ticket events: acknowledgements, replies, solved notices"),
        (settings.surveys_topic, "feedback.surveys.v1", settings.surveys_group_id,
         SURVEY_ACCEPTS, "Survey invitations from the feedback service"),
        (settings.sla_topic, "sla.events.v1", settings.sla_group_id, SLA_ACCEPTS,
         "SLA warnings and breaches: agents' and team leads' alerts"),
        (settings.directory_topic, "ticketing.directory.v1", settings.directory_group_id,
         DIRECTORY_ACCEPTS, "Customers' preferred channels, languages and time zones"),
        (settings.feedback_events_topic, "feedback.events.v1", settings.feedback_events_group_id,
         FEEDBACK_ACCEPTS, "Negative feedback and customers at risk: leads' and managers' alerts"),
    ]  # fmt: skip
    runtime = ServiceRuntime(
        settings,
        migrations=load_migrations("notifications", "notifications"),
        # Created if missing, as the contracts size them, so it can start before their
        # producers have created them; each with its dead letters.
        topics=[
            *(TopicSpec(topic, TOPICS[contract].partitions) for topic, contract, *_ in reads),
            *(TopicSpec(dead_letter_topic(topic), DEAD_LETTER_PARTITIONS) for topic, *_ in reads),
        ],
        consumers=[
            ConsumerSpec(
                topic=topic,
                group_id=group,
                handler=handlers.record_notices,
                accepts=accepts,
                description=description,
            )
            for topic, _, group, accepts, description in reads
        ],
        timers={DELIVER[Lane.URGENT]: handlers.deliver, DELIVER[Lane.BULK]: handlers.deliver},
        # A scheduler per lane: a survey campaign never delays an acknowledgement.
        timer_lanes=[
            {DELIVER[Lane.URGENT]},
            TimerLane(frozenset({DELIVER[Lane.BULK]}), gate=handlers.bulk_may_fire),
        ],
        jobs=jobs,
        subject_keys=keys,
        key_role=KeyRole.REPLICA,  # opens what ticketing sealed, with ticketing's keys
        tenants=TenantRegistry.REPLICA,
    )
    handlers.outcomes = Counter(
        "helpdesk_notifications_deliveries_total",
        "Tries to deliver a message, by channel and outcome (sent, temporary, permanent,"
        " cancelled)", ["channel", "outcome"], registry=runtime.metrics.registry,
    )  # fmt: skip
    handlers.tracer = runtime.tracer
    return runtime


def create_app(
    settings: Settings | None = None, clock: Callable[[], datetime] = _utc_now
) -> FastAPI:
    """The notifications service: HTTP API, consumers and delivery timers (see PARTS)."""
    settings = settings or Settings()
    handlers = notifier(settings, SubjectKeys(settings.key_ring()), clock)
    runtime = build_runtime(settings, clock, handlers)

    def routers(auth: HttpAuth) -> list[APIRouter]:
        deps = api.ApiDeps.of(
            runtime, auth, clock, unsubscribe_secret=unsubscribe_secret(settings),
            templates=handlers.templates,
        )  # fmt: skip
        return [api.router(deps), api.public_router(deps)]

    return create_service_app(
        runtime,
        title="Notifications API",
        version="0.1.0",
        description="What was sent to whom, through what, and the dead letters to re-drive.",
        api=routers,
    )
