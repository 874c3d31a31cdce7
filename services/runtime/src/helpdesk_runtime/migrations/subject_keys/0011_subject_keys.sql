-- The data subjects' keys, wrapped by a master key (helpdesk_runtime.keyring). Deleting a
-- row erases every field sealed with its key, wherever the events were copied. The service
-- that seals personal data owns them and publishes them on privacy.subject-keys.v1; a
-- service entitled to read personal data keeps a replica of that topic here.
CREATE TABLE subject_keys (
    tenant_id       text        NOT NULL,
    subject_id      text        NOT NULL,
    key_id          text        NOT NULL UNIQUE,
    master_version  integer     NOT NULL,
    wrapped         bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published       boolean     NOT NULL DEFAULT false,  -- the owner's: on the topic yet
    PRIMARY KEY (tenant_id, subject_id)
);
CREATE INDEX subject_keys_unpublished ON subject_keys (created_at) WHERE NOT published;

-- Keys destroyed: at the owner, the tombstones still to publish; at a replica, the keys it
-- knows are gone (a missing key that is not here has not arrived yet).
CREATE TABLE destroyed_subject_keys (
    tenant_id     text        NOT NULL,
    subject_id    text        NOT NULL,
    key_id        text,
    destroyed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_id)
);
