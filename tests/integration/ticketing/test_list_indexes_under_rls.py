"""The list's filters still use their indexes under row-level security.

A policy makes PostgreSQL check the tenant before any filter whose function is not
LEAKPROOF, and such a filter can then not be an index condition: the search would read
every row of the tenant. deploy/postgres/leakproof.sql marks the functions (infra.sh runs it
in template1, which the test databases are made from)."""

import asyncpg
import pytest

from helpdesk_runtime import tenancy

FILTERS = {  # index: (filter, what its index condition shows)
    "ticket_list_search": ("search @@ websearch_to_tsquery('simple', 'printer')", "@@"),
    "ticket_list_tags": ("tags @> ARRAY['vip']", "@>"),
    "ticket_list_requester_email": (
        "lower(requester_email) = ANY(ARRAY['kim@example.org'])",
        "lower(requester_email)",
    ),
}


@pytest.mark.parametrize("index", sorted(FILTERS))
async def test_a_filter_is_an_index_condition_for_a_scoped_connection(
    pool: asyncpg.Pool, index: str
) -> None:
    where, shown = FILTERS[index]
    async with pool.acquire() as conn:
        assert await tenancy.functions_not_leakproof(conn) == []
    with tenancy.scoped_to(["acme"]):
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                # The index alone is left to the planner (undone by the rollback): which
                # index it would rather take depends on statistics, not on the policy.
                await conn.execute("ALTER TABLE ticket_list DROP CONSTRAINT ticket_list_pkey")
                others = await conn.fetch(
                    "SELECT indexrelid::regclass::text AS name FROM pg_index"
                    " WHERE indrelid = 'ticket_list'::regclass"
                    " AND indexrelid::regclass::text <> $1",
                    index,
                )
                for other in others:
                    await conn.execute(f"DROP INDEX {other['name']}")
                await conn.execute("SET LOCAL enable_seqscan = off")
                query = f"SELECT ticket_id FROM ticket_list WHERE tenant_id = 'acme' AND {where}"
                plan = [r[0] for r in await conn.fetch("EXPLAIN " + query)]
            finally:
                await tx.rollback()
    scan = next(i for i, line in enumerate(plan) if index in line)
    condition = next(line for line in plan[scan + 1 :] if "Index Cond" in line)
    assert shown in condition, "\n".join(plan)
