"""Mint a development token signed with JWT_SECRET (`ticketing-token --help`)."""

import argparse
import sys
import time

import jwt
from pydantic import ValidationError

from ticketing.auth import Principal, Role
from ticketing.config import Settings


def mint(settings: Settings, principal: Principal, ttl_s: int, now: float | None = None) -> str:
    """A token for `principal`, valid for `ttl_s` seconds, signed with the shared secret."""
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticketing-token",
        description="Print a development JWT for the ticketing API, signed with JWT_SECRET "
        "(the development secret when ENVIRONMENT=local sets no key). "
        "JWT_ISSUER and JWT_AUDIENCE are added when set.",
    )
    parser.add_argument("--tenant", required=True, help="tenant id, e.g. acme")
    parser.add_argument("--agent", required=True, help="agent id (the sub claim)")
    parser.add_argument("--role", choices=[r.value for r in Role], default=Role.AGENT.value)
    parser.add_argument("--name", help="the agent's display name")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, print a token; 0 on success, 2 on bad input or settings."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.ttl <= 0:
        parser.error("--ttl must be positive")
    try:
        principal = Principal(args.tenant, args.agent, Role(args.role), args.name)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        print(f"ticketing-token: error: invalid settings: {problems}", file=sys.stderr)
        return 2
    if settings.jwt_secret is None:
        print(
            "ticketing-token: error: JWT_SECRET is not set; this service verifies tokens with "
            "JWT_PUBLIC_KEY or JWT_JWKS_URL, so get tokens from that issuer instead",
            file=sys.stderr,
        )
        return 2
    print(mint(settings, principal, args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
