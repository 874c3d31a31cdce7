"""Where each tenant's canned responses are kept."""

from uuid import UUID

import asyncpg

from helpdesk_runtime.db import Connection
from ticketing.domain import CannedResponse


class DuplicateNameError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a canned response named {name!r} already exists")


async def add(
    conn: Connection, tenant_id: str, macro_id: UUID, macro: CannedResponse, created_by: str
) -> None:
    try:
        await conn.execute(
            "INSERT INTO canned_responses (tenant_id, id, name, definition, created_by)"
            " VALUES ($1, $2, $3, $4::jsonb, $5)",
            tenant_id, macro_id, macro.name, macro.model_dump_json(), created_by,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateNameError(macro.name) from exc


async def get(conn: Connection, tenant_id: str, macro_id: UUID) -> CannedResponse | None:
    found = await conn.fetchval(
        "SELECT definition::text FROM canned_responses WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        macro_id,
    )
    return CannedResponse.model_validate_json(found) if found else None


async def all_of(conn: Connection, tenant_id: str) -> list[tuple[UUID, CannedResponse]]:
    rows = await conn.fetch(
        "SELECT id, definition::text AS d FROM canned_responses WHERE tenant_id = $1 ORDER BY name",
        tenant_id,
    )
    return [(r["id"], CannedResponse.model_validate_json(r["d"])) for r in rows]


async def remove(conn: Connection, tenant_id: str, macro_id: UUID) -> bool:
    done: str = await conn.execute(
        "DELETE FROM canned_responses WHERE tenant_id = $1 AND id = $2", tenant_id, macro_id
    )
    return done.endswith(" 1")
