"""The ticketing service's settings."""

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from helpdesk_contracts import publisher_intake_topic
from helpdesk_runtime.settings import ServiceSettings
from ticketing.domain.attachments import DEFAULT_TYPES, AttachmentPolicy


class Settings(ServiceSettings):
    service_name: str = "ticketing"
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/ticketing")
    intake_group_id: str = "ticketing-intake"
    sla_group_id: str = "ticketing-sla"
    directory_group_id: str = "ticketing-directory-sync"
    feedback_group_id: str = "ticketing-feedback"
    # Files on tickets (their bytes: BLOB_STORE, in the database unless set to s3).
    attachment_max_bytes: int = Field(default=25 * 2**20, ge=1)
    attachment_ticket_max_bytes: int = Field(default=200 * 2**20, ge=1)
    # Comma-separated content types (as found in the bytes) that may be uploaded.
    attachment_types: Annotated[frozenset[str], NoDecode] = DEFAULT_TYPES
    # An upload no ticket has taken is deleted, bytes and all, this long after it came: as
    # long as the intake topic keeps a message that may still reference it (7 days).
    attachment_unattached_keep_hours: float = Field(default=7 * 24, gt=0)
    # How often the jobs look for such uploads.
    attachment_sweep_interval_s: float = Field(default=3600, gt=0)
    # Comma-separated outside publishers, each with an intake topic of its own
    # (ticketing.intake.v1.<name>; in Kubernetes, a KafkaUser that may write only there).
    intake_publishers: Annotated[frozenset[str], NoDecode] = frozenset()

    @field_validator("intake_publishers")
    @classmethod
    def _publisher_names(cls, value: frozenset[str]) -> frozenset[str]:
        for name in value:
            publisher_intake_topic(name)  # refuses a name no topic can carry
        return value

    @field_validator("attachment_types", "intake_publishers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return frozenset(t.strip() for t in value.split(",") if t.strip()) if isinstance(
            value, str) else value  # fmt: skip

    @property
    def attachment_policy(self) -> AttachmentPolicy:
        return AttachmentPolicy(self.attachment_max_bytes, self.attachment_ticket_max_bytes,
                                self.attachment_types)  # fmt: skip
