-- Agent groups for automatic assignment (tenant configuration, kept by admins).
CREATE TABLE agent_groups (
    tenant_id  text NOT NULL,
    group_id   text NOT NULL,
    name       text NOT NULL,
    strategy   text NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);

CREATE TABLE group_members (
    tenant_id         text        NOT NULL,
    group_id          text        NOT NULL,
    agent_id          text        NOT NULL,
    available         boolean     NOT NULL DEFAULT true,
    last_assigned_at  timestamptz,
    PRIMARY KEY (tenant_id, group_id, agent_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES agent_groups ON DELETE CASCADE
);
