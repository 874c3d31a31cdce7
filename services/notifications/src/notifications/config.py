"""The notifications service's settings."""

from typing import Self

from pydantic import Field, SecretStr, model_validator

from helpdesk_runtime.settings import ServiceSettings

DEV_REPLY_SECRET = "local-development-reply-address-secret"


class Settings(ServiceSettings):
    service_name: str = "notifications"
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/notifications")
    http_port: int = Field(default=8003, ge=1, le=65535)
    tickets_group_id: str = "notifications-tickets"
    surveys_group_id: str = "notifications-surveys"
    sla_group_id: str = "notifications-sla"
    # The topics of the contracts; other names only for benchmarks and tests of their own.
    tickets_topic: str = "ticketing.tickets.v2"
    surveys_topic: str = "feedback.surveys.v1"
    sla_topic: str = "sla.events.v1"

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
        if local and isinstance(data, dict) and not data.get("reply_address_secret"):
            return {**data, "reply_address_secret": SecretStr(DEV_REPLY_SECRET)}
        return data

    @model_validator(mode="after")
    def _reply_secret_set(self) -> Self:
        if self.reply_address_secret is None:
            raise ValueError(
                "REPLY_ADDRESS_SECRET is not set (only ENVIRONMENT=local has a dev secret)"
            )
        return self
