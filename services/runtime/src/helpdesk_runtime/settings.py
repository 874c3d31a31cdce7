"""Settings every service shares, read once from the environment at start-up."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Base class of each service's one settings object (env vars, case-insensitive)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str
    environment: str = "local"
    log_level: str = "INFO"
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")

    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/helpdesk")
    database_pool_min: int = Field(default=2, ge=1)
    database_pool_max: int = Field(default=10, ge=1)

    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_client_id: str | None = None
    # Created at start-up when missing; in Kubernetes Strimzi owns topics and this stays off.
    kafka_create_topics: bool = True
    kafka_replication_factor: int = Field(default=1, ge=1)

    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8000, ge=1, le=65535)

    consumer_batch_size: int = Field(default=500, ge=1)
    consumer_batch_timeout_ms: int = Field(default=100, ge=1)
    consumer_max_message_bytes: int = Field(default=1_048_576, ge=1024)
    consumer_retry_attempts: int = Field(default=5, ge=1)
    consumer_retry_backoff_s: float = Field(default=0.2, gt=0)

    outbox_batch_size: int = Field(default=1000, ge=1)
    outbox_poll_interval_s: float = Field(default=1.0, gt=0)

    # Below a pod's terminationGracePeriodSeconds (30 s by default).
    shutdown_grace_s: float = Field(default=20.0, gt=0)

    @property
    def client_id(self) -> str:
        return self.kafka_client_id or self.service_name
