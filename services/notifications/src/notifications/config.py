"""The notifications service's settings."""

from typing import Self

from pydantic import Field, SecretStr, model_validator

from helpdesk_runtime.settings import ServiceSettings

DEV_REPLY_SECRET = "local-development-reply-address-secret"
DEV_WEBHOOK_SECRET = "whsec_bG9jYWwtZGV2ZWxvcG1lbnQtd2ViaG9vay1zZWNyZXQ="


class Settings(ServiceSettings):
    service_name: str = "notifications"
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/notifications")
    http_port: int = Field(default=8003, ge=1, le=65535)
    tickets_group_id: str = "notifications-tickets"
    surveys_group_id: str = "notifications-surveys"
    sla_group_id: str = "notifications-sla"
    directory_group_id: str = "notifications-directory"
    feedback_events_group_id: str = "notifications-feedback-events"
    # The topics of the contracts; other names only for benchmarks and tests of their own.
    tickets_topic: str = "ticketing.tickets.v2"
    surveys_topic: str = "feedback.surveys.v1"
    sla_topic: str = "sla.events.v1"
    directory_topic: str = "ticketing.directory.v1"
    feedback_events_topic: str = "feedback.events.v1"

    # Outgoing mail. Locally `make up` runs a mail catcher on 1025 (README: where to look).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # "none", "starttls" (submission, port 587) or "tls" (implicit, port 465).
    smtp_security: str = Field(default="none", pattern="^(none|starttls|tls)$")
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    # Connections opened at once per batch of deliveries (a provider limits them).
    smtp_connections: int = Field(default=4, ge=1, le=64)
    mail_from_address: str = "support@helpdesk.localhost"
    mail_from_name: str = "Support"
    # Our Message-IDs end in this domain; replies come to reply+<token>@<reply_domain>.
    mail_domain: str = "helpdesk.localhost"
    reply_domain: str = "reply.helpdesk.localhost"
    # Signs the ticket token in reply addresses, so a forged address names no ticket.
    reply_address_secret: SecretStr | None = None
    default_language: str = "en"
    # Where this service's public pages are reached from the internet (the one-click
    # unsubscribe links in mail).
    public_base_url: str = Field(default="http://127.0.0.1:8003", pattern="^https?://")
    # DKIM: sign outgoing mail as this domain and selector with this private key (PEM);
    # publish the public key at <selector>._domainkey.<domain>. Unset: mail is not signed.
    dkim_private_key: SecretStr | None = None
    dkim_selector: str = "helpdesk"
    dkim_domain: str | None = None
    """Default: MAIL_DOMAIN."""

    # Inbound mail: our SMTP listener (0: none) for replies to our emails and mail to the
    # tenants' support addresses (`PUT /v1/mailboxes/{address}`), published to the intake.
    inbound_smtp_host: str = "0.0.0.0"
    inbound_smtp_port: int = Field(default=2525, ge=0, le=65535)
    inbound_max_bytes: int = Field(default=26_214_400, ge=1024)
    intake_topic: str = "ticketing.intake.v1"
    # Where ticketing's API is: the files of inbound mail are uploaded there (with a service
    # token signed with SERVICE_TOKEN_SECRET, which ticketing shares) before the message.
    ticketing_url: str = Field(default="http://127.0.0.1:8001", pattern="^https?://")
    ticketing_timeout_s: float = Field(default=60.0, gt=0)

    # Webhooks, signed as standardwebhooks.com says: "whsec_<base64 of the key>", shared
    # with the receivers (only ENVIRONMENT=local has a dev secret).
    webhook_signing_secret: SecretStr | None = None
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # Webhooks to private, loopback or link-local addresses are refused unless this is on
    # (agents set their own URLs); a local setup or a test may turn it on.
    webhook_private_targets: bool = False
    # The messenger channel (Telegram's Bot API); unset: messenger deliveries fail as
    # "not configured" and people's fallback channels are used.
    telegram_bot_token: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    # Per channel, messages per second at most (a provider's limit).
    email_per_second: float = Field(default=100.0, gt=0)
    webhook_per_second: float = Field(default=200.0, gt=0)
    messenger_per_second: float = Field(default=25.0, gt=0)
    # An endpoint whose batches failed this many times in a row is not tried for a while.
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)
    # An event older than this when read notifies no one (a service deployed onto years of
    # ticket history, or back from a long outage, must not mail customers about old tickets).
    notify_within_s: float = Field(default=86400.0, gt=0)

    # Temporary failures are retried: `retry_base_s` doubling up to `retry_max_s`, with
    # jitter, at most `retry_attempts` tries in all; then the delivery is a dead letter.
    retry_base_s: float = Field(default=30.0, gt=0)
    retry_max_s: float = Field(default=3600.0, gt=0)
    retry_attempts: int = Field(default=8, ge=1, le=50)

    @model_validator(mode="before")
    @classmethod
    def _dev_reply_secret(cls, data: object) -> object:
        local = isinstance(data, dict) and data.get("environment", "local") == "local"
        if local and isinstance(data, dict):
            for name, dev in (("reply_address_secret", DEV_REPLY_SECRET),
                              ("webhook_signing_secret", DEV_WEBHOOK_SECRET)):  # fmt: skip
                if not data.get(name):
                    data = {**data, name: SecretStr(dev)}
        return data

    @model_validator(mode="after")
    def _secrets_set(self) -> Self:
        needed = ["reply_address_secret", "webhook_signing_secret"]
        if self.inbound_smtp_port:  # uploads the files of inbound mail to ticketing
            needed.append("service_token_secret")
        for name in needed:
            if getattr(self, name) is None:
                raise ValueError(
                    f"{name.upper()} is not set (only ENVIRONMENT=local has a dev secret)"
                )
        return self
