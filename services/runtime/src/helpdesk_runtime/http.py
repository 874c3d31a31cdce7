"""HTTP pieces every service shares: health probes and correlation ids."""

from uuid import UUID, uuid4

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpdesk_runtime.logging import bound
from helpdesk_runtime.service import ServiceRuntime

CORRELATION_HEADER = "X-Correlation-Id"


def health_router(runtime: ServiceRuntime) -> APIRouter:
    """`/health/live` (the process answers) and `/health/ready` (its dependencies answer)."""
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready")
    async def ready() -> JSONResponse:
        checks = await runtime.readiness()
        ok = runtime.started and all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    return router


def correlation_id_of(request: Request) -> UUID:
    """The request's correlation id (set by the middleware)."""
    value: UUID = request.state.correlation_id
    return value


class CorrelationIdMiddleware:
    """Take X-Correlation-Id from the caller (or make one), log with it, echo it back.

    Plain ASGI rather than `@app.middleware("http")`, whose BaseHTTPMiddleware costs an
    extra task and stream per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            correlation_id = UUID(Headers(scope=scope).get(CORRELATION_HEADER, ""))
        except ValueError:
            correlation_id = uuid4()
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = str(correlation_id)
            await send(message)

        with bound(correlation_id=str(correlation_id)):
            await self.app(scope, receive, send_with_id)


def install_error_handlers(app: FastAPI) -> None:
    """Input the database cannot store (a NUL character, say) is the caller's error: 422."""

    @app.exception_handler(asyncpg.DataError)
    async def unstorable(_request: Request, exc: asyncpg.DataError) -> JSONResponse:
        reason = str(exc).splitlines()[0]
        return JSONResponse(
            {"detail": f"the request holds a value that cannot be stored: {reason}"},
            status_code=422,
        )
