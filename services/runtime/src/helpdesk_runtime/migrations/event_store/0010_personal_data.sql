-- Personal data (issue 12): each event names the data subject whose key seals its personal
-- fields (helpdesk_contracts.pii), so that erasure and export find a person's events.
ALTER TABLE events ADD COLUMN subject_id text;
CREATE INDEX events_subject ON events (tenant_id, subject_id) WHERE subject_id IS NOT NULL;

-- The data subjects' keys, wrapped by a master key (helpdesk_runtime.keyring). Deleting a
-- row erases every field sealed with its key, wherever the events were copied.
CREATE TABLE subject_keys (
    tenant_id       text        NOT NULL,
    subject_id      text        NOT NULL,
    key_id          text        NOT NULL UNIQUE,
    master_version  integer     NOT NULL,
    wrapped         bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_id)
);
