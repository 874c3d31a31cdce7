"""The ticketing service's settings."""

from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from helpdesk_runtime.settings import ServiceSettings

DEV_JWT_SECRET = "dev-secret-change-me-local-only-0123456789"  # 32+ bytes for HS256
_JWT_KEY_SOURCES = ("jwt_secret", "jwt_public_key", "jwt_jwks_url")


class Settings(ServiceSettings):
    service_name: str = "ticketing"
    database_url: SecretStr = SecretStr("postgresql://helpdesk@127.0.0.1:15432/ticketing")
    intake_group_id: str = "ticketing-intake"

    # JWT bearer authentication: exactly one key source (JWT_SECRET, JWT_PUBLIC_KEY or
    # JWT_JWKS_URL) must be set.
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

    @field_validator(*_JWT_KEY_SOURCES, mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _never_none(cls, value: list[str]) -> list[str]:
        if any(a.lower() == "none" for a in value):
            raise ValueError('the "none" algorithm accepts unsigned tokens and is never allowed')
        return value

    @model_validator(mode="before")
    @classmethod
    def _dev_secret_when_local(cls, data: Any) -> Any:
        # Only a local environment falls back to a well-known development secret. Any other
        # environment must configure a key source, or start-up fails (see _one_key_source).
        if (
            isinstance(data, dict)
            and data.get("environment", "local") == "local"
            and not any(data.get(name) for name in _JWT_KEY_SOURCES)
        ):
            return {**data, "jwt_secret": SecretStr(DEV_JWT_SECRET)}
        return data

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        configured = [name.upper() for name in _JWT_KEY_SOURCES if getattr(self, name) is not None]
        if len(configured) != 1:
            found = ", ".join(configured) or "none (only ENVIRONMENT=local has a dev secret)"
            raise ValueError(
                "configure exactly one JWT key source: JWT_SECRET, JWT_PUBLIC_KEY or "
                f"JWT_JWKS_URL; found: {found}"
            )
        return self
