"""JWT bearer authentication: which agent of which tenant is calling, and with which role."""

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import get_default_algorithms
from jwt.types import Options
from pydantic import TypeAdapter, ValidationError

from helpdesk_contracts import TenantId
from helpdesk_contracts.values import Identifier
from helpdesk_runtime.settings import ServiceSettings

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_REMEMBERED_MAX = 10_000  # tokens; a few per agent signed in
_TENANT_ID: TypeAdapter[str] = TypeAdapter(TenantId)
_AGENT_ID: TypeAdapter[str] = TypeAdapter(Identifier)


class Role(StrEnum):
    """What an agent may do; each role has the rights of the roles before it."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for agent, growing with the rights."""
        return list(Role).index(self)

    def at_least(self, other: "Role") -> bool:
        """Whether this role has every right of `other`."""
        return self.rank >= other.rank


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: one agent of one tenant, with a role."""

    tenant_id: str
    agent_id: str
    role: Role
    name: str | None = None

    def __post_init__(self) -> None:
        if not _is_valid(_TENANT_ID, self.tenant_id):
            raise ValueError("the tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        if not _is_valid(_AGENT_ID, self.agent_id):
            raise ValueError("the agent id (sub) must be 1..200 characters, not blank")


class AuthError(Exception):
    """A token was refused; `reason` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeysUnavailableError(Exception):
    """The signing keys cannot be fetched right now (the caller is not at fault)."""


class AuthConfigError(ValueError):
    """The authentication settings cannot work together."""


class TokenVerifier:
    """Checks bearer tokens against the configured key source and reads their Principal."""

    realm: str

    def __init__(self, settings: ServiceSettings) -> None:
        self.realm = settings.service_name
        self._key: PublicKey | str | None = None
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwt_secret is not None:
            self._key = settings.jwt_secret.get_secret_value()
        elif settings.jwt_public_key is not None:
            self._key = _load_public_key(settings.jwt_public_key)
        elif settings.jwt_jwks_url is not None:
            self._jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url, lifespan=settings.jwt_jwks_cache_s, timeout=10
            )
        else:
            raise AuthConfigError("set JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL")
        shared_secret = settings.jwt_secret is not None
        self.algorithms = _algorithms(settings.jwt_algorithms, shared_secret=shared_secret)
        self._tenant_claim = settings.jwt_tenant_claim
        self._role_claim = settings.jwt_role_claim
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_s
        self._options: Options = {"require": ["exp", "sub", self._tenant_claim, self._role_claim]}
        # An agent's frontend sends the same token with every request until it expires, and
        # checking it costs about a quarter of the HTTP layer's CPU for opening a ticket. A
        # token checked once is remembered until it expires, and for no longer than the JWKS
        # keys are cached: a withdrawn key then stops working no later than it would anyway.
        self._remember_s = settings.jwt_jwks_cache_s
        self._remembered: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """The caller the token names; raises AuthError when the token is not acceptable."""
        remembered = self._remembered.get(token)
        if remembered is not None and time.time() < remembered[1]:
            return remembered[0]
        key = await self._jwks_key(token) if self._jwks is not None else self._key
        assert key is not None  # one key source is set (checked in __init__)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                options=self._options,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
            )
        except jwt.PyJWTError as exc:
            raise AuthError(_reason(exc, token)) from None
        principal = principal_from_claims(
            claims, tenant_claim=self._tenant_claim, role_claim=self._role_claim
        )
        if len(self._remembered) >= _REMEMBERED_MAX:
            self._remembered.clear()  # bounded; whoever calls next is checked again
        until = min(float(claims["exp"]) + self._leeway, time.time() + self._remember_s)
        self._remembered[token] = (principal, until)
        return principal

    async def _jwks_key(self, token: str) -> jwt.PyJWK:
        assert self._jwks is not None
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise AuthError("the token is malformed") from None
        if not isinstance(kid, str) or not kid:
            raise AuthError("the token names no signing key (kid header)")
        try:
            # PyJWKClient fetches with blocking urllib (when its cache is cold or stale).
            return await asyncio.to_thread(self._jwks.get_signing_key, kid)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError) as exc:
            raise KeysUnavailableError(f"cannot fetch the JWKS: {exc}") from exc
        except jwt.PyJWKClientError:
            raise AuthError("no published signing key matches the token's kid") from None


def principal_from_claims(
    claims: dict[str, Any], *, tenant_claim: str, role_claim: str
) -> Principal:
    """The Principal a verified token's claims name; AuthError when they name none."""
    name = claims.get("name")
    try:
        return Principal(
            tenant_id=claims[tenant_claim],
            agent_id=claims["sub"],
            role=_role(claims[role_claim]),
            name=name if isinstance(name, str) else None,
        )
    except ValueError as exc:
        raise AuthError(str(exc)) from None


def _is_valid(adapter: TypeAdapter[str], value: object) -> bool:
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


def _role(value: Any) -> Role:
    # OIDC providers often give a list of roles; the highest known one counts.
    roles = []
    for v in value if isinstance(value, list) else [value]:
        try:
            roles.append(Role(v))
        except ValueError:
            continue
    if not roles:
        raise AuthError(f"unknown role {value!r:.60}; expected agent, supervisor or admin")
    return max(roles, key=lambda r: r.rank)


def _reason(exc: jwt.PyJWTError, token: str) -> str:
    match exc:
        case jwt.ExpiredSignatureError():
            return "the token has expired"
        case jwt.InvalidSignatureError():
            return "the token's signature is invalid"
        case jwt.MissingRequiredClaimError():
            return f"the token has no {exc.claim!r} claim"
        case jwt.InvalidAudienceError():
            return "the token is meant for another audience"
        case jwt.InvalidIssuerError():
            return "the token comes from an issuer this service does not trust"
        case jwt.ImmatureSignatureError():
            return "the token is not valid yet"
        case jwt.InvalidAlgorithmError() | jwt.InvalidKeyError():
            return f"the token's algorithm {_alg(token)!r:.20} is not accepted here"
        case jwt.DecodeError():
            return "the token is malformed"
        case _:
            return f"the token is invalid: {exc}"


def _alg(token: str) -> object:
    try:
        return jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        return None


def _algorithms(configured: list[str], *, shared_secret: bool) -> list[str]:
    if shared_secret:
        chosen, allowed = configured or ["HS256"], _HMAC_ALGORITHMS
    else:
        # Never HS*: a public key must not double as an HMAC secret (algorithm confusion).
        chosen = configured or ["RS256", "ES256"]
        allowed = frozenset(get_default_algorithms()) - _HMAC_ALGORITHMS
    wrong = [a for a in chosen if a not in allowed or a == "none"]
    if wrong:
        source = "JWT_SECRET" if shared_secret else "a public key"
        raise AuthConfigError(
            f"JWT_ALGORITHMS {wrong} do not fit {source}; use some of {sorted(allowed - {'none'})}"
        )
    return chosen


def _load_public_key(pem: str) -> PublicKey:
    # An env var often carries the PEM on one line, with literal "\n" escapes.
    data = pem.replace("\\n", "\n").strip().encode()
    try:
        key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AuthConfigError("JWT_PUBLIC_KEY is not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise AuthConfigError("JWT_PUBLIC_KEY must be an RSA, EC or Ed25519 public key")
    return key
