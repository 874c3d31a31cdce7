"""The HTTP edge every service shares: one app factory, health, correlation ids, CORS."""

import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpdesk_runtime import tenancy, trace
from helpdesk_runtime.audit import audit_router
from helpdesk_runtime.auth import TokenVerifier
from helpdesk_runtime.db import Connection
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.logging import bound
from helpdesk_runtime.metrics import Metrics
from helpdesk_runtime.problems import (
    declare_problems,
    install_problem_handlers,
    json_bodies_only,
    problem,
)
from helpdesk_runtime.service import ServiceRuntime
from helpdesk_runtime.settings import Part
from helpdesk_runtime.telemetry import Span, SpanKind, Tracer
from helpdesk_runtime.tokens import ServiceTokens, StreamTokens

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


def metrics_router(runtime: ServiceRuntime) -> APIRouter:
    """`/metrics` in Prometheus' text format."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    )
    async def metrics() -> Response:
        await runtime.metrics.refresh()
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


# Label values from the request are bounded: a client inventing methods adds no series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    """Requests by method, route template and status, and how long they took."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The template, never the path: /v1/tickets/{ticket_id}, one series for all ids.
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_seconds.labels(method, route).observe(time.perf_counter() - started)


@dataclass(frozen=True)
class RouteDeps:
    """What a service's routes are given, wired once in its bootstrap (`RouteDeps.of`); a
    service with more subclasses it."""

    transaction: Callable[[], AbstractAsyncContextManager[Connection]]
    """A connection in a transaction: a route's unit of work."""
    connection: Callable[[], AbstractAsyncContextManager[Connection]]
    """A connection for reads."""
    clock: Callable[[], datetime]
    auth: HttpAuth

    @classmethod
    def of(
        cls, runtime: ServiceRuntime, auth: HttpAuth, clock: Callable[[], datetime],
        **more: Any,
    ) -> Self:  # fmt: skip
        return cls(
            transaction=runtime.transaction, connection=lambda: runtime.pool.acquire(),
            clock=clock, auth=auth, **more,
        )  # fmt: skip


def correlation_id_of(request: Request) -> UUID:
    """The request's correlation id (set by the middleware)."""
    value: UUID = request.state.correlation_id
    return value


class CorrelationIdMiddleware:
    """Take X-Correlation-Id from the caller (or make one), log with it, echo it back; and
    continue the caller's W3C trace context (or start one) for the events the request
    causes, in a server span (recorded when the tracer records).

    Plain ASGI rather than `@app.middleware("http")`, whose BaseHTTPMiddleware costs an
    extra task and stream per request.
    """

    def __init__(self, app: ASGIApp, tracer: Tracer | None = None) -> None:
        self.app = app
        self.tracer = tracer or Tracer()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            correlation_id = UUID(headers.get(CORRELATION_HEADER, ""))
        except ValueError:
            correlation_id = uuid4()
        method = scope["method"] if scope["method"] in _METHODS else "_OTHER"
        # Never the path: it may hold a token (a survey link); the route template is set
        # once the router has matched.
        span = self.tracer.start(method, headers.get(trace.HEADER), SpanKind.SERVER)
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[CORRELATION_HEADER] = str(correlation_id)
            await send(message)

        try:
            with (
                bound(correlation_id=str(correlation_id), trace_id=span.context.trace_id),
                trace.using(span.context),
                tenancy.scoped_to(()),  # no tenant's rows until a token names one (http_auth)
            ):
                await self.app(scope, receive, send_with_id)
        finally:
            if self.tracer.recording:
                _end_server_span(span, scope, method, status)


def _end_server_span(span: Span, scope: Scope, method: str, status: int) -> None:
    span.set("http.request.method", method)
    route = getattr(scope.get("route"), "path", None)
    if route is not None:
        span.rename(f"{method} {route}")
        span.set("http.route", route)
    span.set("http.response.status_code", status)
    if status >= 500:
        span.fail(f"HTTP {status}")
    span.end()


class BodyLimitMiddleware:
    """413 for a request body over its limit, before anything reads it: a JSON body over
    HTTP_MAX_BODY_BYTES, or over a route's own limit (an upload). A body sent without a
    Content-Length is counted as it is read, and cut off at the limit."""

    def __init__(self, app: ASGIApp, default: int, routes: Mapping[str, int]) -> None:
        self.app, self.default, self.routes = app, default, dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope["path"], self.default)
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit():
            # The server reads no more than the length declared: nothing left to count.
            if int(length) <= limit:
                await self.app(scope, receive, send)
                return
            response = problem(413, f"the body is {length} bytes; the limit is {limit}")
            await response(scope, receive, send)
            return
        read, over, answered = 0, False, False

        async def counted() -> Message:
            nonlocal read, over
            message = await receive()
            read += len(message.get("body", b""))
            if read > limit:
                over = True
                raise BodyTooLargeError(f"over the limit of {limit} bytes")
            return message

        async def answer(message: Message) -> None:
            # The app answers a body it could not read with its own error: ours replaces it.
            nonlocal answered
            if not over:
                await send(message)
            elif not answered:
                answered = True
                refused = problem(413, f"the body is over the limit of {limit} bytes")
                await refused(scope, receive, send)

        await self.app(scope, counted, answer)


class BodyTooLargeError(Exception):
    """A body without a Content-Length ran over its limit while it was read."""


# What a browser app on another origin may send and read (CORS).
_REQUEST_HEADERS = [
    "Authorization", "Content-Type", "If-Match", "Idempotency-Key", "Last-Event-ID",
    CORRELATION_HEADER, trace.HEADER, "tracestate",
]  # fmt: skip
_RESPONSE_HEADERS = ["ETag", "Location", "Retry-After", CORRELATION_HEADER]


def create_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    version: str,
    description: str,
    api: Callable[[HttpAuth], Iterable[APIRouter]] = lambda _: (),
    live_stream: bool = False,
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """A service's HTTP app: its routers (when this process runs the API) on the shared edge.

    `api` receives the authentication dependencies and returns the service's routers. A
    process that runs only consumers or jobs still answers health and metrics.
    `body_limits` gives routes (by path) a larger body than HTTP_MAX_BODY_BYTES (uploads).
    A service that keeps the tenant registry (or a replica of it) refuses the tokens of
    tenants the deployment does not serve, or has suspended (403).
    """
    settings = runtime.settings
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=runtime.lifespan,
        dependencies=[Depends(json_bodies_only)],
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.include_router(health_router(runtime))
    app.include_router(metrics_router(runtime))
    if settings.runs(Part.API):
        # A key configuration that cannot work fails here, at start-up.
        gate = runtime.tenant_gate.refusal if runtime.tenant_gate is not None else None
        service_tokens = ServiceTokens(settings) if settings.service_token_secret else None
        auth = HttpAuth(TokenVerifier(settings), StreamTokens(settings), gate, service_tokens)
        for router in api(auth):
            app.include_router(router)
        app.include_router(audit_router(auth, lambda: runtime.pool.acquire()))
        if live_stream:
            app.include_router(auth.stream_token_router())
    declare_problems(app)
    # Outermost last: CORS answers preflights before anything else looks at the request.
    app.add_middleware(CorrelationIdMiddleware, tracer=runtime.tracer)
    app.add_middleware(HttpMetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(BodyLimitMiddleware, default=settings.http_max_body_bytes,
                       routes=body_limits or {})  # fmt: skip
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=_REQUEST_HEADERS,
            expose_headers=_RESPONSE_HEADERS,
            max_age=600,
        )
    return app
