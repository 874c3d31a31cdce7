"""HTTP pieces every service shares: health probes and correlation ids."""

from collections.abc import Awaitable, Callable
from uuid import UUID, uuid4

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

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


def install_correlation_middleware(app: FastAPI) -> None:
    """Take X-Correlation-Id from the caller (or make one), log with it, echo it back."""

    @app.middleware("http")
    async def correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            correlation_id = UUID(request.headers.get(CORRELATION_HEADER, ""))
        except ValueError:
            correlation_id = uuid4()
        request.state.correlation_id = correlation_id
        with bound(correlation_id=str(correlation_id)):
            response = await call_next(request)
        response.headers[CORRELATION_HEADER] = str(correlation_id)
        return response
