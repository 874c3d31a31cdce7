"""Agent groups, their members' availability, and whose turn it is."""

from datetime import datetime

from helpdesk_runtime.db import Connection
from ticketing.domain import Candidate, Strategy

WORKING = ["new", "open", "pending", "on_hold"]


async def put_group(
    conn: Connection, tenant_id: str, group_id: str, name: str, strategy: Strategy,
    members: list[str],
) -> None:  # fmt: skip
    """Create or replace a group; members who stay keep their availability and turn."""
    await conn.execute(
        "INSERT INTO agent_groups (tenant_id, group_id, name, strategy) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tenant_id, group_id)"
        " DO UPDATE SET name = EXCLUDED.name, strategy = EXCLUDED.strategy",
        tenant_id, group_id, name, strategy.value,
    )  # fmt: skip
    await conn.execute(
        "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2"
        " AND NOT (agent_id = ANY($3))",
        tenant_id, group_id, members,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO group_members (tenant_id, group_id, agent_id)"
        " SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
        tenant_id, group_id, members,
    )  # fmt: skip


async def groups(conn: Connection, tenant_id: str) -> list[dict[str, object]]:
    rows = await conn.fetch(
        """
        SELECT g.group_id, g.name, g.strategy,
               coalesce(json_agg(json_build_object('agent_id', m.agent_id,
                   'available', m.available) ORDER BY m.agent_id)
                   FILTER (WHERE m.agent_id IS NOT NULL), '[]')::text AS members
        FROM agent_groups g LEFT JOIN group_members m USING (tenant_id, group_id)
        WHERE g.tenant_id = $1 GROUP BY g.group_id, g.name, g.strategy ORDER BY g.group_id
        """,
        tenant_id,
    )
    return [dict(r) for r in rows]


async def set_availability(conn: Connection, tenant_id: str, agent_id: str, available: bool) -> int:
    """An agent is available (or not) in every group they belong to; returns the groups."""
    done: str = await conn.execute(
        "UPDATE group_members SET available = $3 WHERE tenant_id = $1 AND agent_id = $2",
        tenant_id, agent_id, available,
    )  # fmt: skip
    return int(done.split()[-1])


async def candidates(
    conn: Connection, tenant_id: str, group_id: str
) -> tuple[Strategy, list[Candidate]] | None:
    """The group's strategy and members with their load; locks the group until commit so
    that two assignments at the same moment take turns instead of picking the same agent."""
    strategy = await conn.fetchval(
        "SELECT strategy FROM agent_groups WHERE tenant_id = $1 AND group_id = $2 FOR UPDATE",
        tenant_id, group_id,
    )  # fmt: skip
    if strategy is None:
        return None
    rows = await conn.fetch(
        """
        SELECT m.agent_id, m.available, m.last_assigned_at,
               (SELECT count(*) FROM ticket_list t WHERE t.tenant_id = m.tenant_id
                  AND t.assignee_id = m.agent_id AND t.status = ANY($3)) AS open_tickets
        FROM group_members m WHERE m.tenant_id = $1 AND m.group_id = $2
        """,
        tenant_id, group_id, WORKING,
    )  # fmt: skip
    return Strategy(strategy), [
        Candidate(r["agent_id"], r["available"], r["open_tickets"], r["last_assigned_at"])
        for r in rows
    ]


async def mark_assigned(
    conn: Connection, tenant_id: str, group_id: str, agent_id: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE group_members SET last_assigned_at = $4"
        " WHERE tenant_id = $1 AND group_id = $2 AND agent_id = $3",
        tenant_id, group_id, agent_id, at,
    )  # fmt: skip
