"""Every error answer of every service is an RFC 9457 problem (`application/problem+json`).

Routes keep raising FastAPI's `HTTPException(status, detail)`; the handlers here give it the
one documented shape. `problem_responses` declares the statuses an operation can return,
and `declare_problems` adds the ones the edge itself answers (401, 415, 422, 503) to every
operation of the OpenAPI document, so a client generated from it knows them all.
"""

from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpdesk_contracts.errors import plain_errors
from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
# RFC 9110's names where Python's HTTPStatus still has the older ones.
_RENAMED = {413: "Content Too Large", 422: "Unprocessable Content"}


def _title(status: int) -> str:
    return _RENAMED.get(status) or HTTPStatus(status).phrase


class FieldError(BaseModel):
    """One refused value of the request: where it is and what is wrong with it."""

    loc: list[str | int] = Field(description="Where: body, query, path or header, then names")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem: `title` names the kind, `detail` says what happened this time."""

    type: str = Field(default="about:blank", description="A URI naming the kind of problem")
    title: str = Field(description="The status's phrase, e.g. Not Found")
    status: int
    detail: str = Field(description="What went wrong with this request, for a human")
    instance: str | None = Field(default=None, description="The request path")
    errors: list[FieldError] | None = Field(
        default=None, description="Each refused value, when the request itself was invalid"
    )


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem-details response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field_errors(raw: Any) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
         "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in plain_errors(raw)
    ]  # fmt: skip


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"the request is invalid: {where}: {first['msg']}{more}"


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error, ours or the framework's, as a problem."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        if isinstance(exc.detail, list):  # a list of field errors (see api error mapping)
            errors = _field_errors(exc.detail)
            return problem(
                exc.status_code, _summary(errors), instance=request.url.path,
                errors=errors, headers=headers,
            )  # fmt: skip
        detail = str(exc.detail) if exc.detail else _title(exc.status_code)
        return problem(exc.status_code, detail, instance=request.url.path, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc.errors())
        return problem(422, _summary(errors), instance=request.url.path, errors=errors)

    @app.exception_handler(asyncpg.DataError)
    async def unstorable(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # Input the database cannot store (a NUL character, say) is the caller's error.
        reason = str(exc).splitlines()[0]
        detail = f"the request holds a value that cannot be stored: {reason}"
        return problem(422, detail, instance=request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request failed", path=request.url.path, exc_info=exc)
        return problem(500, "the service failed to answer; it has been logged")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these statuses answer with a problem."""
    return {
        status: {
            "model": Problem,
            "description": _title(status),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def json_bodies_only(request: Request) -> None:
    """An app-wide dependency: a request body that is not JSON gets 415, not a confusing 422
    about its fields. A dependency, not a middleware, so it runs after routing (metrics
    name the route) and before the body is validated."""
    if request.method not in _BODY_METHODS:
        return
    headers = request.headers
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media in _forms_taken(request.scope.get("route")):
        return  # an upload, or a form a page posts (the route declares its form fields)
    if has_body and media and media != "application/json" and not media.endswith("+json"):
        raise HTTPException(
            415,
            f"the body is {media}; send application/json",
            headers={"Accept": "application/json"},
        )


def _forms_taken(route: Any) -> tuple[str, ...]:
    """The form encodings a route reads: an upload (a file field) only multipart, a plain
    form (an unsubscribe button) either."""
    dependant = getattr(route, "dependant", None)
    fields = [p.field_info for p in dependant.body_params] if dependant is not None else []
    if any(isinstance(f, params.File) for f in fields):
        return ("multipart/form-data",)
    if any(isinstance(f, params.Form) for f in fields):
        return ("multipart/form-data", "application/x-www-form-urlencoded")
    return ()


def declare_problems(app: FastAPI) -> None:
    """Make the OpenAPI document list the problems the edge answers on every operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(components["Problem"].pop("$defs", {}))
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _declare(operation)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {422} if operation.get("parameters") or "requestBody" in operation else set()
    if "requestBody" in operation:
        statuses |= {400, 415}  # 400: a body that cannot be read at all (not UTF-8, say)
    if operation.get("security"):
        statuses |= {401, 503}  # 503: the signing keys cannot be fetched right now
    for status, spec in problem_responses(*sorted(statuses)).items():
        responses[str(status)] = {"description": spec["description"], "content": spec["content"]}
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            # A page for people (the survey page) answers its errors as pages: documented
            # beside the problem the edge may answer instead.
            page = {k: v for k, v in response.get("content", {}).items() if k == "text/html"}
            response["content"] = page | problem_responses(int(status))[int(status)]["content"]
