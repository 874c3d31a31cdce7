"""Settings every service shares, read once from the environment at start-up."""

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from helpdesk_runtime.keyring import KeyRing

DEV_JWT_SECRET = "dev-secret-change-me-local-only-0123456789"  # 32+ bytes for HS256
DEV_STREAM_TOKEN_SECRET = "dev-stream-secret-local-only-0123456789"
DEV_SERVICE_TOKEN_SECRET = "dev-service-token-secret-local-only-0123456789"
# 32 bytes, base64: "local-only pii master key 0123!!"
DEV_PII_MASTER_KEYS = "1:bG9jYWwtb25seSBwaWkgbWFzdGVyIGtleSAwMTIzISE="
_JWT_KEY_SOURCES = ("jwt_secret", "jwt_public_key", "jwt_jwks_url")
_OTHER_SECRETS = ("stream_token_secret", "service_token_secret", "pii_master_keys")
_BLANK_IS_UNSET = (
    *_JWT_KEY_SOURCES, *_OTHER_SECRETS, "otel_exporter_otlp_endpoint", "kafka_sasl_username",
    "kafka_sasl_password", "kafka_ssl_cafile",
)  # fmt: skip


class Part(StrEnum):
    """What a process runs; each can scale as a Deployment of its own."""

    API = "api"  # the service's HTTP routes (health and metrics are always served)
    CONSUMERS = "consumers"  # the Kafka subscribers
    JOBS = "jobs"  # background jobs: the outbox relay, timers, the service's own jobs


def _comma_separated(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ServiceSettings(BaseSettings):
    """Base class of each service's one settings object (env vars, case-insensitive)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # The service's name in logs, metrics, traces and as its Kafka client id.
    service_name: str
    # "local" (a developer's machine, the tests) supplies development secrets; anything
    # else requires every secret to be set.
    environment: str = "local"
    log_level: str = "INFO"
    # json (one object a line, for a log pipeline), console (for people), auto: console on
    # a terminal, else json.
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    # PARTS=consumers runs only the subscribers, say; the default runs everything.
    parts: Annotated[frozenset[Part], NoDecode] = frozenset(Part)

    # The service's own database, as its own role (postgresql://user:password@host/db).
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/helpdesk")
    # Connections per process: consumers, jobs and requests share the pool.
    database_pool_min: int = Field(default=2, ge=1)
    database_pool_max: int = Field(default=10, ge=1)

    # host:port of Kafka brokers, comma-separated.
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    # Default: SERVICE_NAME.
    kafka_client_id: str | None = None
    # Created at start-up when missing; in Kubernetes Strimzi owns topics and this stays off.
    kafka_create_topics: bool = True
    kafka_replication_factor: int = Field(default=1, ge=1)
    # The largest record this service publishes: the broker's (or topic's) message.max.bytes,
    # so that a dead letter of an oversized message (above CONSUMER_MAX_MESSAGE_BYTES) fits.
    kafka_max_message_bytes: int = Field(default=4_194_304, ge=1024)
    # How the clients reach the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (in
    # Kubernetes: Strimzi's TLS listener with SCRAM-SHA-512, the password from the service's
    # KafkaUser secret, KAFKA_SSL_CAFILE the cluster CA's ca.crt).
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$"
    )
    kafka_sasl_mechanism: str = Field(
        default="SCRAM-SHA-512", pattern="^(SCRAM-SHA-512|SCRAM-SHA-256|PLAIN)$"
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # A PEM file of the CA that signs the brokers' certificates; unset: the system's CAs.
    kafka_ssl_cafile: str | None = None
    # Between the client's attempts when the broker is away: aiokafka's 100 ms default made
    # every client loop try ten times a second through an outage.
    kafka_retry_backoff_ms: int = Field(default=500, ge=10)

    # Files (blobs.py), for a service that keeps them: in its database, or S3-compatible
    # storage. Credentials may also come from the AWS_* variables and files botocore reads.
    blob_store: str = Field(default="postgres", pattern="^(postgres|s3)$")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    # Where the HTTP API (and /health, /metrics) listens.
    http_host: str = "0.0.0.0"
    # The largest request body (JSON) read; a route may allow more (an upload).
    http_max_body_bytes: int = Field(default=4 * 2**20, ge=1024)
    http_port: int = Field(default=8000, ge=1, le=65535)
    # A line per request. Behind an ingress that logs requests, off saves about 4 % of the
    # CPU of a command (issue 9's profile); errors are logged either way.
    http_access_log: bool = True
    # Origins of browser apps (the agents' frontend) allowed to call the API, comma-separated.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # JWT bearer authentication: exactly one key source (JWT_SECRET, JWT_PUBLIC_KEY or
    # JWT_JWKS_URL) must be set; ENVIRONMENT=local falls back to a development secret.
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = Field(default=None, pattern="^https?://")
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_s: float = Field(default=30.0, ge=0)
    # Empty means by key source: HS256 for a secret, RS256 and ES256 for keys. The env var is
    # a comma-separated list, e.g. JWT_ALGORITHMS=RS256,PS256.
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_tenant_claim: str = Field(default="tenant_id", min_length=1)
    jwt_role_claim: str = Field(default="role", min_length=1)
    jwt_jwks_cache_s: float = Field(default=300.0, gt=0)
    # Signs the short-lived tokens a browser's EventSource puts in the stream URL (it cannot
    # send an Authorization header). Every replica of a service must share it.
    stream_token_secret: SecretStr | None = None
    # Signs the tokens our services call each other's APIs with, for a tenant (tokens.py:
    # notifications uploads the files of customers' mail to ticketing). Shared by the
    # services that call and are called; unset: this service neither sends nor takes them.
    service_token_secret: SecretStr | None = None
    # The master keys of personal data, "1:<base64>,2:<base64>" (the highest wraps new keys):
    # from a Kubernetes Secret. Only a service that seals personal data asks for them.
    pii_master_keys: SecretStr | None = None
    stream_token_ttl_s: int = Field(default=60, ge=5, le=3600)

    consumer_batch_size: int = Field(default=500, ge=1)
    consumer_batch_timeout_ms: int = Field(default=100, ge=1)
    # Batches in flight per subscription: as many members of the consumer group in this
    # process, each with its share of the partitions (one partition is never split, so a
    # key's order holds). While one batch waits for the database another is decoded.
    consumer_concurrency: int = Field(default=1, ge=1, le=64)
    consumer_max_message_bytes: int = Field(default=1_048_576, ge=1024)
    consumer_retry_attempts: int = Field(default=5, ge=1)
    consumer_retry_backoff_s: float = Field(default=0.2, gt=0)
    # A consumer that does not poll for this long leaves its group; in an outage ours
    # pauses its partitions and keeps polling instead (subscriptions.py).
    consumer_max_poll_interval_ms: int = Field(default=300_000, ge=1000)

    outbox_batch_size: int = Field(default=1000, ge=1)
    # Publishing split by a hash of the partition key: each shard is relayed by whichever
    # replica takes it, so more replicas publish more. Every replica must use one count.
    outbox_relay_shards: int = Field(default=1, ge=1, le=64)
    outbox_poll_interval_s: float = Field(default=1.0, gt=0)

    # Watermarks (for services that publish them): how often, and how long a transaction may
    # take from stamping its events to committing them, clock skew included (watermarks.py).
    watermark_interval_s: float = Field(default=1.0, gt=0)
    watermark_allowance_s: float = Field(default=5.0, ge=0)
    timer_batch_size: int = Field(default=500, ge=1)
    # How late a timer that another replica scheduled sooner than the next known one can be.
    timer_poll_interval_s: float = Field(default=1.0, gt=0)

    # Where spans go over OTLP/HTTP: an OpenTelemetry Collector's base URL, e.g.
    # http://otel-collector:4318 (telemetry.py). Unset: no spans are recorded; trace context
    # is carried all the same. The exporter's other OTEL_EXPORTER_OTLP_* and OTEL_BSP_*
    # variables (headers, timeout, queue) are read by the OpenTelemetry SDK itself.
    otel_exporter_otlp_endpoint: str | None = Field(default=None, pattern="^https?://")
    # The share of new traces recorded, 0 to 1; a trace continued from a caller keeps the
    # caller's decision, so a trace is whole or absent.
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0, le=1)

    # The whole shutdown, below a pod's terminationGracePeriodSeconds (30 s by default):
    # open HTTP requests and live streams get a quarter (5 s at most), then the consumers'
    # in-flight batches, then the background jobs' current pass, one after the other.
    shutdown_grace_s: float = Field(default=20.0, gt=0)

    @property
    def http_shutdown_s(self) -> float:
        return min(5.0, self.shutdown_grace_s / 4)

    @property
    def consumers_shutdown_s(self) -> float:
        return (self.shutdown_grace_s - self.http_shutdown_s) * 2 / 3

    @property
    def jobs_shutdown_s(self) -> float:
        return (self.shutdown_grace_s - self.http_shutdown_s) / 3

    @property
    def client_id(self) -> str:
        return self.kafka_client_id or self.service_name

    @model_validator(mode="after")
    def _dead_letters_fit(self) -> Self:
        if self.kafka_max_message_bytes < self.consumer_max_message_bytes:
            raise ValueError(
                "KAFKA_MAX_MESSAGE_BYTES must be at least CONSUMER_MAX_MESSAGE_BYTES, or an"
                " oversized message could not be dead-lettered"
            )
        return self

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs"
                " KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return self

    def runs(self, part: Part) -> bool:
        """Whether this process runs `part` (see PARTS)."""
        return part in self.parts

    @field_validator("parts", "cors_origins", "jwt_algorithms", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_separated(value)

    @field_validator("parts")
    @classmethod
    def _some_part(cls, value: frozenset[Part]) -> frozenset[Part]:
        if not value:
            raise ValueError("PARTS names nothing to run; use some of api, consumers, jobs")
        return value

    @field_validator(*_BLANK_IS_UNSET, mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_algorithms")
    @classmethod
    def _never_none(cls, value: list[str]) -> list[str]:
        if any(a.lower() == "none" for a in value):
            raise ValueError('the "none" algorithm accepts unsigned tokens and is never allowed')
        return value

    @model_validator(mode="before")
    @classmethod
    def _dev_secrets_when_local(cls, data: Any) -> Any:
        # Only a local environment falls back to well-known development secrets. Any other
        # environment must configure them, or start-up fails (see _secrets_configured).
        if not isinstance(data, dict) or data.get("environment", "local") != "local":
            return data
        if not any(data.get(name) for name in _JWT_KEY_SOURCES):
            data = {**data, "jwt_secret": SecretStr(DEV_JWT_SECRET)}
        if not data.get("stream_token_secret"):
            data = {**data, "stream_token_secret": SecretStr(DEV_STREAM_TOKEN_SECRET)}
        if not data.get("service_token_secret"):
            data = {**data, "service_token_secret": SecretStr(DEV_SERVICE_TOKEN_SECRET)}
        if not data.get("pii_master_keys"):
            data = {**data, "pii_master_keys": SecretStr(DEV_PII_MASTER_KEYS)}
        return data

    def key_ring(self) -> KeyRing:
        """The master keys that wrap the data subjects' keys (helpdesk_runtime.keyring)."""
        if self.pii_master_keys is None:
            raise ValueError(
                "PII_MASTER_KEYS is not set (only ENVIRONMENT=local has a dev key): "
                '"1:<base64 of 32 random bytes>", a new version appended to rotate'
            )
        return KeyRing.parse(self.pii_master_keys.get_secret_value())

    @model_validator(mode="after")
    def _secrets_configured(self) -> Self:
        configured = [name.upper() for name in _JWT_KEY_SOURCES if getattr(self, name) is not None]
        if len(configured) != 1:
            found = ", ".join(configured) or "none (only ENVIRONMENT=local has a dev secret)"
            raise ValueError(
                "configure exactly one JWT key source: JWT_SECRET, JWT_PUBLIC_KEY or "
                f"JWT_JWKS_URL; found: {found}"
            )
        if self.stream_token_secret is None and self.runs(Part.API):
            raise ValueError(
                "STREAM_TOKEN_SECRET is not set (only ENVIRONMENT=local has a dev secret)"
            )
        return self
