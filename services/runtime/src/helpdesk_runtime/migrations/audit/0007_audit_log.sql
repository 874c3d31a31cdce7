-- Who changed a tenant's configuration (canned responses, fields, groups, policies...),
-- what, and when: written in the same transaction as the change, read by admins.
CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    tenant_id   text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    actor_role  text        NOT NULL,
    entity      text        NOT NULL,
    entity_id   text        NOT NULL,
    action      text        NOT NULL,
    before      jsonb,
    after       jsonb
);

CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id DESC);
