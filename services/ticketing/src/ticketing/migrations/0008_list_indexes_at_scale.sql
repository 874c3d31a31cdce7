-- The ticket list's indexes, fitted to the queries the agents' frontend makes on tenants of
-- 300,000 tickets (measured by tests/benchmarks/test_list_at_scale.py). Each replaces an
-- index of 0002: the list keeps seven indexes, so writing a row costs what it did, plus
-- one GIN entry per row in each of the two GIN indexes (the tenant's).
--
-- Building them locks out writes to ticket_list (37 s for a million rows on 2 cores): on a
-- live deployment, build them beforehand with CREATE INDEX CONCURRENTLY under other names.

-- btree_gin lets a GIN index hold a plain column beside the tsvector / array. A trusted
-- extension: the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- Words and tags: the tenant is part of the GIN key, so one index scan yields this tenant's
-- matches only. With the single-column indexes a search fetched every tenant's matches (a
-- word common in another tenant cost here) or intersected them with a bitmap of all the
-- tenant's rows (300,000 entries, ~10 ms, before reading a single ticket). queries.py
-- collects matches through these only when they are rare (see `_matching`).
DROP INDEX ticket_list_search;
CREATE INDEX ticket_list_search ON ticket_list USING gin (tenant_id, search);
DROP INDEX ticket_list_tags;
CREATE INDEX ticket_list_tags ON ticket_list USING gin (tenant_id, tags);

-- An agent's queue (their unsolved tickets, any order): with the status before updated_at,
-- it reads the agent's unsolved tickets alone instead of their whole history (8,800 rows,
-- 65 ms, for the busiest agent of a year). One status (assignee + status=open) still reads
-- in updated_at order; all of an agent's tickets in that order now sort what they read.
DROP INDEX ticket_list_assignee;
CREATE INDEX ticket_list_assignee ON ticket_list (tenant_id, assignee_id, status, updated_at DESC);
