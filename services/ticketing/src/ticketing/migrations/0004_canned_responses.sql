-- Canned responses (macros): tenant configuration, not ticket history. Applying one writes
-- ordinary ticket events, so the history never depends on a macro's later edits.
CREATE TABLE canned_responses (
    tenant_id   text        NOT NULL,
    id          uuid        NOT NULL,
    name        text        NOT NULL,
    definition  jsonb       NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
