-- The tenants this service serves, as ticketing.tenants.v1 says (helpdesk_runtime.tenants).
-- Not a tenant table: it is read to decide whether a caller is a tenant at all.
CREATE TABLE tenants (
    tenant_id     text        PRIMARY KEY,
    name          text        NOT NULL,
    suspended_at  timestamptz,
    changed_at    timestamptz NOT NULL
);
