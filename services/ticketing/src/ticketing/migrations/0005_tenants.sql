-- The tenants this deployment serves (provisioned by ops: `python -m ticketing tenants add`).
-- Intake refuses messages for any other tenant.
CREATE TABLE tenants (
    tenant_id   text        PRIMARY KEY,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
