"""Tokens this platform signs itself: development bearer tokens, live-stream tokens and
the tokens our services call each other with."""

import time

import jwt

from helpdesk_runtime.auth import AuthError, Principal, Role, principal_from_claims
from helpdesk_runtime.settings import ServiceSettings


def mint(
    settings: ServiceSettings, principal: Principal, ttl_s: int, now: float | None = None
) -> str:
    """A bearer token for `principal`, valid for `ttl_s` seconds, signed with JWT_SECRET."""
    if settings.jwt_secret is None:
        raise ValueError("JWT_SECRET is not set")
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": principal.agent_id,
        settings.jwt_tenant_claim: principal.tenant_id,
        settings.jwt_role_claim: str(principal.role),
        "iat": issued_at,
        "exp": issued_at + ttl_s,
    }
    optional = {"name": principal.name, "iss": settings.jwt_issuer, "aud": settings.jwt_audience}
    claims |= {claim: value for claim, value in optional.items() if value is not None}
    algorithm = (settings.jwt_algorithms or ["HS256"])[0]
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=algorithm)


class StreamTokens:
    """Short-lived tokens that only open this service's live stream.

    A browser's `EventSource` cannot send an Authorization header, so the frontend trades
    its bearer token for one of these and puts it in the stream URL. It is signed with a
    secret of the service's own (not the identity provider's key, which we may not hold),
    names its single purpose as the audience, and expires within a minute or so: a URL
    that leaks into a log or a history opens nothing for long and nothing else ever.
    """

    ALGORITHM = "HS256"

    def __init__(self, settings: ServiceSettings) -> None:
        if settings.stream_token_secret is None:
            raise ValueError("STREAM_TOKEN_SECRET is not set")
        self._secret = settings.stream_token_secret.get_secret_value()
        self._audience = f"{settings.service_name}:stream"
        self.ttl_s = settings.stream_token_ttl_s

    def mint(self, principal: Principal, now: float | None = None) -> str:
        """A stream token for the caller who asked for it."""
        issued_at = int(time.time() if now is None else now)
        claims: dict[str, object] = {
            "sub": principal.agent_id,
            "tenant_id": principal.tenant_id,
            "role": str(principal.role),
            "aud": self._audience,
            "iat": issued_at,
            "exp": issued_at + self.ttl_s,
        }
        if principal.name is not None:
            claims["name"] = principal.name
        return jwt.encode(claims, self._secret, algorithm=self.ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The caller the stream token names; AuthError when it is not one of ours or expired."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self.ALGORITHM],
                audience=self._audience,
                options={"require": ["exp", "sub", "aud", "tenant_id", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the stream token has expired; ask for a new one") from None
        except jwt.PyJWTError:
            raise AuthError("this is not a valid stream token of this service") from None
        return principal_from_claims(claims, tenant_claim="tenant_id", role_claim="role")


class ServiceTokens:
    """Tokens one of our services signs to call another's API for a tenant (notifications
    uploads the files of a customer's email to ticketing).

    The identity provider issues tokens to people; a customer's email has no agent to act
    as, and a service cannot mint the provider's tokens. So a caller signs, with a secret
    the services share (SERVICE_TOKEN_SECRET), a token naming itself, one tenant and one
    purpose of one service ("ticketing:upload"), valid for a minute. The called service
    takes it only on the routes that declare that purpose (`HttpAuth.principal_or_service`),
    with the rights of an agent of that tenant: a leaked token opens one route of one
    tenant, briefly.
    """

    ALGORITHM = "HS256"
    TTL_S = 60

    def __init__(self, settings: ServiceSettings) -> None:
        if settings.service_token_secret is None:
            raise ValueError("SERVICE_TOKEN_SECRET is not set")
        self._secret = settings.service_token_secret.get_secret_value()
        self._name = settings.service_name

    def mint(self, service: str, purpose: str, tenant_id: str, now: float | None = None) -> str:
        """A token for calling `service`'s routes of `purpose` for `tenant_id`."""
        issued_at = int(time.time() if now is None else now)
        claims: dict[str, object] = {
            "sub": f"service:{self._name}",
            "tenant_id": tenant_id,
            "aud": f"{service}:{purpose}",
            "iat": issued_at,
            "exp": issued_at + self.TTL_S,
        }
        return jwt.encode(claims, self._secret, algorithm=self.ALGORITHM)

    def is_for(self, token: str, purpose: str) -> bool:
        """Whether the token claims to be a service token for `purpose` of this service
        (unverified: it only says which check applies)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return claims.get("aud") == f"{self._name}:{purpose}"

    def verify(self, token: str, purpose: str) -> Principal:
        """The calling service, as an agent of the token's tenant; AuthError when the token
        is not one of ours for `purpose`, or has expired."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self.ALGORITHM],
                audience=f"{self._name}:{purpose}",
                options={"require": ["exp", "sub", "aud", "tenant_id"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the service token has expired") from None
        except jwt.PyJWTError:
            raise AuthError(f"this is not a valid service token for {purpose!r} here") from None
        return principal_from_claims(
            claims | {"role": str(Role.AGENT)}, tenant_claim="tenant_id", role_claim="role"
        )
