"""The FastAPI dependencies that tell a route who calls: bearer tokens, roles, stream tokens,
service tokens."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from helpdesk_runtime import tenancy
from helpdesk_runtime.auth import AuthError, KeysUnavailableError, Principal, Role, TokenVerifier
from helpdesk_runtime.tokens import ServiceTokens, StreamTokens

Authenticated = Callable[..., Awaitable[Principal]]
"""A FastAPI dependency that gives the request's Principal."""

TenantRefusal = Callable[[str], Awaitable[str | None]]
"""Why a tenant's tokens are refused (not registered, suspended), or None: a valid token
names its tenant, but only the deployment knows whether that tenant may call."""

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    scheme_name="bearerAuth",
    description="A JWT whose claims name the tenant, the agent (sub) and the role.",
)


class StreamToken(BaseModel):
    """A token that opens this service's live stream, and for how long it does."""

    token: str
    expires_in: int = Field(description="Seconds; open the stream before then")
    usage: str = Field(description="How to use it, e.g. GET /v1/stream?access_token=…")


class HttpAuth:
    """Builds the dependencies a service's routes declare: `principal`, `at_least(role)`."""

    def __init__(
        self, verifier: TokenVerifier, stream_tokens: StreamTokens, tenants: TenantRefusal | None,
        service_tokens: ServiceTokens | None = None,
    ) -> None:  # fmt: skip
        self._verifier = verifier
        self._stream_tokens = stream_tokens
        self._tenants = tenants
        self._service_tokens = service_tokens
        self.principal: Authenticated = self._bearer_principal
        self.stream_reader: Authenticated = self._stream_reader

    async def _bearer_principal(
        self, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("a bearer token is required", f'Bearer realm="{self._realm}"')
        try:
            principal = await self._verifier.verify(credentials.credentials)
        except AuthError as exc:
            raise _unauthorized(exc.reason, 'Bearer error="invalid_token"') from None
        except KeysUnavailableError as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "the token cannot be checked now; retry"
            ) from exc
        return await self._admitted(principal)

    async def _admitted(self, principal: Principal) -> Principal:
        if self._tenants is not None and (why := await self._tenants(principal.tenant_id)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, why)
        tenancy.narrow_to(principal.tenant_id)  # the request's database rows: its tenant's
        return principal

    async def _stream_reader(
        self,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        access_token: Annotated[
            str | None,
            Query(
                description="A stream token from POST /v1/stream-tokens, for clients such as"
                " a browser's EventSource that cannot send an Authorization header"
            ),
        ] = None,
    ) -> Principal:
        if credentials is not None or access_token is None:
            return await self._bearer_principal(credentials)
        try:
            principal = self._stream_tokens.verify(access_token)
        except AuthError as exc:
            raise _unauthorized(exc.reason, 'Bearer error="invalid_token"') from None
        return await self._admitted(principal)

    def principal_or_service(self, purpose: str) -> Authenticated:
        """A dependency giving the caller: an agent (a bearer token), or one of our services
        with a service token for `purpose` of this service (tokens.ServiceTokens), as an
        agent of the token's tenant. Only routes that declare a purpose take such tokens."""
        service_tokens = self._service_tokens

        async def caller(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> Principal:
            token = credentials.credentials if credentials is not None else ""
            if service_tokens is None or not service_tokens.is_for(token, purpose):
                return await self._bearer_principal(credentials)
            try:
                principal = service_tokens.verify(token, purpose)
            except AuthError as exc:
                raise _unauthorized(exc.reason, 'Bearer error="invalid_token"') from None
            return await self._admitted(principal)

        return caller

    def at_least(self, role: Role) -> Authenticated:
        """A dependency giving the Principal when its role is at least `role`, else 403."""
        authenticated = self.principal

        async def authorised(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
            if not principal.role.at_least(role):
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"this action needs the {role} role")
            return principal

        return authorised

    @property
    def _realm(self) -> str:
        return self._verifier.realm

    def stream_token_router(self) -> APIRouter:
        """`POST /v1/stream-tokens`: trade a bearer token for a short-lived stream token."""
        router = APIRouter(tags=["stream"])
        Caller = Annotated[Principal, Depends(self.principal)]  # noqa: N806

        @router.post("/v1/stream-tokens", response_model=StreamToken, status_code=201)
        async def stream_token(caller: Caller) -> StreamToken:
            """A token for the live stream's URL, valid for a minute or so (a browser's
            `EventSource` cannot send the Authorization header). Ask for a new one to
            reconnect, with `after` set to the last event id seen."""
            return StreamToken(
                token=self._stream_tokens.mint(caller),
                expires_in=self._stream_tokens.ttl_s,
                usage="GET /v1/stream?access_token=<token>",
            )

        return router


def _unauthorized(detail: str, challenge: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
    )
