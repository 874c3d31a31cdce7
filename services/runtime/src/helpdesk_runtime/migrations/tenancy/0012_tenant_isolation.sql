-- Row-level security for tenant tables (helpdesk_runtime.tenancy). A connection names the
-- tenants it may see in the `helpdesk.tenants` setting: '*' for all (the platform's own work),
-- else a text[] literal; unset or '{}' sees nothing.
--
-- The policy reads the setting through scalar subqueries: PostgreSQL evaluates them once per
-- statement (an InitPlan), not once per row. Each function is one expression, which the
-- planner inlines: a body it cannot inline is planned again at every statement.

CREATE FUNCTION helpdesk_all_tenants() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(current_setting('helpdesk.tenants', true) = '*', false) $$;

CREATE FUNCTION helpdesk_tenants() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(nullif(nullif(current_setting('helpdesk.tenants', true), '*'), ''), '{}')::text[]
$$;

-- Each tenant table calls this once in the migration that creates it. FORCE makes the policy
-- bind the table's owner too: the services connect as the owners of their tables.
CREATE FUNCTION helpdesk_isolate(tbl regclass, tenant text DEFAULT 'tenant_id') RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s'
        ' USING ((SELECT helpdesk_all_tenants()) OR %s = ANY ((SELECT helpdesk_tenants())::text[]))',
        tbl, tenant
    );
END
$$;
