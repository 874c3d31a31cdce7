"""Tokens this platform signs itself: development bearer tokens and live-stream tokens."""

import argparse
import sys
import time
from collections.abc import Callable

import jwt
from pydantic import ValidationError

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


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the `token` command."""
    parser.add_argument("--tenant", required=True, help="tenant id, e.g. acme")
    parser.add_argument("--agent", required=True, help="agent id (the sub claim)")
    parser.add_argument("--role", choices=[r.value for r in Role], default=Role.AGENT.value)
    parser.add_argument("--name", help="the agent's display name")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")


def print_token(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    settings: Callable[[], ServiceSettings],
) -> int:
    """Print a development token; 0 on success, 2 on bad input or settings."""
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    try:
        principal = Principal(args.tenant, args.agent, Role(args.role), args.name)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        configured = settings()
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        print(f"{parser.prog}: error: invalid settings: {problems}", file=sys.stderr)
        return 2
    if configured.jwt_secret is None:
        print(
            f"{parser.prog}: error: JWT_SECRET is not set; this service verifies tokens with "
            "JWT_PUBLIC_KEY or JWT_JWKS_URL, so get tokens from that issuer instead",
            file=sys.stderr,
        )
        return 2
    print(mint(configured, principal, args.ttl))
    return 0
