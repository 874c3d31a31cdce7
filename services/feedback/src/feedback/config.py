"""The feedback service's settings."""

from typing import Self

from pydantic import Field, SecretStr, model_validator

from helpdesk_runtime.settings import ServiceSettings

DEV_SURVEY_SECRET = "local-development-survey-link-secret"


class Settings(ServiceSettings):
    service_name: str = "feedback"
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/feedback")
    http_port: int = Field(default=8004, ge=1, le=65535)
    tickets_group_id: str = "feedback-tickets"
    received_group_id: str = "feedback-received"
    directory_group_id: str = "feedback-directory"
    sla_group_id: str = "feedback-sla"
    # The topics of the contracts; other names only for benchmarks and tests of their own.
    tickets_topic: str = "ticketing.tickets.v2"
    received_topic: str = "feedback.received.v1"
    directory_topic: str = "ticketing.directory.v1"
    sla_topic: str = "sla.events.v1"
    surveys_topic: str = "feedback.surveys.v1"
    events_topic: str = "feedback.events.v1"

    # Where customers reach the survey page from the internet (links in invitations).
    public_base_url: str = Field(default="http://127.0.0.1:8004", pattern="^https?://")
    # Signs the survey links; changing it voids every link already sent.
    survey_link_secret: SecretStr | None = None
    default_language: str = "en"
    # The public survey page: answers per minute from one address (a shared office NAT
    # answers many surveys; a script trying tokens does not get far).
    page_posts_per_minute: int = Field(default=30, ge=1)
    page_views_per_minute: int = Field(default=120, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _dev_secret(cls, data: object) -> object:
        local = isinstance(data, dict) and data.get("environment", "local") == "local"
        if local and isinstance(data, dict) and not data.get("survey_link_secret"):
            data = {**data, "survey_link_secret": SecretStr(DEV_SURVEY_SECRET)}
        return data

    @model_validator(mode="after")
    def _secret_set(self) -> Self:
        if self.survey_link_secret is None:
            raise ValueError("SURVEY_LINK_SECRET is not set (only ENVIRONMENT=local has a dev one)")
        return self
