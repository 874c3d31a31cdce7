"""Where each tenant's custom field definitions are kept."""

from collections import defaultdict
from collections.abc import Iterable

from helpdesk_runtime.db import Connection
from ticketing.domain import FieldDefinition

Definitions = dict[str, FieldDefinition]


async def put(conn: Connection, tenant_id: str, definition: FieldDefinition) -> None:
    await conn.execute(
        "INSERT INTO custom_fields (tenant_id, key, definition) VALUES ($1, $2, $3::jsonb)"
        " ON CONFLICT (tenant_id, key) DO UPDATE SET definition = EXCLUDED.definition",
        tenant_id,
        definition.key,
        definition.model_dump_json(),
    )


async def remove(conn: Connection, tenant_id: str, key: str) -> bool:
    done: str = await conn.execute(
        "DELETE FROM custom_fields WHERE tenant_id = $1 AND key = $2", tenant_id, key
    )
    return done.endswith(" 1")


async def of_tenants(conn: Connection, tenant_ids: Iterable[str]) -> dict[str, Definitions]:
    """Every listed tenant's definitions (an empty dict for a tenant with none)."""
    wanted = list(set(tenant_ids))
    rows = await conn.fetch(
        "SELECT tenant_id, definition::text AS d FROM custom_fields WHERE tenant_id = ANY($1)"
        " ORDER BY key",
        wanted,
    )
    found: dict[str, Definitions] = defaultdict(dict)
    for r in rows:
        definition = FieldDefinition.model_validate_json(r["d"])
        found[r["tenant_id"]][definition.key] = definition
    return {t: found.get(t, {}) for t in wanted}


async def of_tenant(conn: Connection, tenant_id: str) -> Definitions:
    return (await of_tenants(conn, [tenant_id]))[tenant_id]
