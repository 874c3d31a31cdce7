"""The agents' HTTP API (thin: authenticate, parse, call a handler, shape the answer)."""

from fastapi import APIRouter

from ticketing.api.attachments import attachments_router
from ticketing.api.commands import commands_router
from ticketing.api.deps import ApiDeps
from ticketing.api.directory import directory_router
from ticketing.api.fields import fields_router
from ticketing.api.groups import groups_router
from ticketing.api.macros import macros_router
from ticketing.api.privacy import privacy_router
from ticketing.api.queries import queries_router
from ticketing.api.stream import stream_router


def router(deps: ApiDeps) -> APIRouter:
    api = APIRouter()
    api.include_router(queries_router(deps))
    api.include_router(commands_router(deps))
    api.include_router(stream_router(deps))
    api.include_router(macros_router(deps))
    api.include_router(fields_router(deps))
    api.include_router(groups_router(deps))
    api.include_router(directory_router(deps))
    api.include_router(attachments_router(deps))
    api.include_router(privacy_router(deps))
    return api


__all__ = ["ApiDeps", "router"]
