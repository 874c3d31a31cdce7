-- The support addresses a tenant receives new requests on (mail to them opens tickets).
CREATE TABLE mailboxes (
    address   text NOT NULL PRIMARY KEY,
    tenant_id text NOT NULL
);
SELECT helpdesk_isolate('mailboxes');

-- Addresses that bounced for good or complained, kept as a SHA-256 of the lower-cased
-- address (no plain address here): nothing more is sent to them until an admin lifts it.
CREATE TABLE suppressions (
    tenant_id    text        NOT NULL,
    address_hash text        NOT NULL,
    reason       text        NOT NULL,
    recipient    text,
    delivery_id  uuid,
    since        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, address_hash)
);
SELECT helpdesk_isolate('suppressions');

-- Every mail received, what it was taken for and what became of it (no content).
CREATE TABLE inbound_messages (
    tenant_id   text        NOT NULL,
    message_id  text        NOT NULL,
    kind        text        NOT NULL,
    ticket_id   uuid,
    outcome     text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX inbound_by_ticket ON inbound_messages (tenant_id, ticket_id, received_at);
SELECT helpdesk_isolate('inbound_messages');

ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outcome_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_outcome_check
    CHECK (outcome IN ('sent', 'temporary', 'permanent', 'cancelled', 'bounced', 'complaint'));
