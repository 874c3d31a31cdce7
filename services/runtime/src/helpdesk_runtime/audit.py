"""Who changed a tenant's configuration, what, and when.

Configuration (canned responses, custom fields, groups, SLA policies, notification rules)
lives in plain tables, not in an event log; each change writes an entry here in the same
transaction, with the value before and after, so admins can answer "who changed this?".
"""

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.db import Connection
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.problems import problem_responses


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class AuditEntry(BaseModel):
    """One change: who, when, to what, and the value before and after."""

    id: int
    at: datetime
    actor: str = Field(description="The agent's id (sub), or ops:<user> for the command line")
    actor_role: str
    entity: str = Field(description="What kind of thing changed, e.g. canned_response")
    entity_id: str
    action: Action
    before: Any = None
    after: Any = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page")


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str)


async def record(
    conn: Connection,
    *,
    tenant_id: str,
    actor: Principal | str,
    entity: str,
    entity_id: str,
    action: Action,
    before: Any = None,
    after: Any = None,
) -> None:
    """Write one entry, inside the transaction of the change it describes."""
    name, role = (
        (actor.agent_id, str(actor.role)) if isinstance(actor, Principal) else (actor, "ops")
    )
    await conn.execute(
        "INSERT INTO audit_log (tenant_id, actor, actor_role, entity, entity_id, action,"
        " before, after) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)",
        tenant_id, name, role, entity, entity_id, action.value, _json(before), _json(after),
    )  # fmt: skip


async def entries(
    conn: Connection,
    tenant_id: str,
    *,
    entity: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """The tenant's entries, newest first, older than the entry `before`."""
    rows = await conn.fetch(
        "SELECT id, at, actor, actor_role, entity, entity_id, action,"
        " before::text AS before, after::text AS after FROM audit_log"
        " WHERE tenant_id = $1 AND ($2::text IS NULL OR entity = $2)"
        " AND ($3::bigint IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
        tenant_id, entity, before, limit,
    )  # fmt: skip
    return [
        AuditEntry.model_validate(
            {
                **dict(r),
                "before": json.loads(r["before"]) if r["before"] else None,
                "after": json.loads(r["after"]) if r["after"] else None,
            }
        )
        for r in rows
    ]


def audit_router(
    auth: HttpAuth, connection: Callable[[], AbstractAsyncContextManager[Connection]]
) -> APIRouter:
    """`GET /v1/audit` for admins: the tenant's configuration changes, newest first."""
    router = APIRouter(tags=["audit"])
    Admin = Annotated[Principal, Depends(auth.at_least(Role.ADMIN))]  # noqa: N806

    @router.get("/v1/audit", response_model=AuditPage, responses=problem_responses(403))
    async def audit_log(
        caller: Admin,
        entity: Annotated[str | None, Query(max_length=100)] = None,
        before: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> AuditPage:
        """Who changed what in this tenant's configuration, and when."""
        async with connection() as conn:
            found = await entries(conn, caller.tenant_id, entity=entity, before=before, limit=limit)
        return AuditPage(items=found, next_before=found[-1].id if len(found) == limit else None)

    return router
