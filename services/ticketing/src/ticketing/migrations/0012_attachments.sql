-- Files uploaded to tickets: what the events reference (their bytes are in the blob store,
-- under `storage_key`). A row exists only once its bytes are stored: an upload that did not
-- finish has no row, and nothing can reference it.
CREATE TABLE attachments (
    tenant_id      text        NOT NULL,
    attachment_id  uuid        NOT NULL,
    filename       text        NOT NULL,
    content_type   text        NOT NULL,
    size           bigint      NOT NULL CHECK (size > 0),
    sha256         text        NOT NULL,
    storage_key    text        NOT NULL,
    uploaded_by    text        NOT NULL,
    uploaded_at    timestamptz NOT NULL DEFAULT now(),
    ticket_id      uuid,       -- the ticket it was first attached to (its files' total is limited)
    PRIMARY KEY (tenant_id, attachment_id)
);
CREATE INDEX attachments_of_ticket ON attachments (tenant_id, ticket_id) WHERE ticket_id IS NOT NULL;
