-- Erasures on request (GDPR Art. 17, 152-FZ): who asked, when, which customer; never what
-- was erased. A rebuild of the read models forgets these customers again.
CREATE TABLE erasures (
    tenant_id        text        NOT NULL,
    customer_id      text        NOT NULL,
    erased_subjects  text[]      NOT NULL,  -- the customer and the duplicates merged into it
    requested_by     text        NOT NULL,
    requested_at     timestamptz NOT NULL,
    tickets          integer     NOT NULL,  -- tickets whose personal data it erased
    files            integer     NOT NULL,  -- attachments deleted
    PRIMARY KEY (tenant_id, customer_id)
);
