-- The tickets we notify about: who asked, and the opening event as published (its personal
-- fields sealed with the requester's key, opened only when a message is rendered), so an
-- erased customer's data is unreadable here too.
CREATE TABLE tickets (
    tenant_id    text        NOT NULL,
    ticket_id    uuid        NOT NULL,
    number       bigint      NOT NULL,
    requester_id text        NOT NULL,
    opening      jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id)
);
SELECT helpdesk_isolate('tickets');

-- One row per (event, recipient, channel): its id is derived from those three, so a
-- redelivered event finds its row and adds none. The triggering event is kept as
-- published (sealed). `state`: pending -> sent | dead | cancelled; a dead letter is
-- re-driven back to pending over the API.
CREATE TABLE deliveries (
    tenant_id     text        NOT NULL,
    delivery_id   uuid        NOT NULL,
    event_id      uuid        NOT NULL,
    event_type    text        NOT NULL,
    event         jsonb       NOT NULL,
    ticket_id     uuid,
    recipient     text        NOT NULL,
    channel       text        NOT NULL,
    template      text        NOT NULL,
    lane          text        NOT NULL,
    transactional boolean     NOT NULL,
    state         text        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'sent', 'dead', 'cancelled')),
    attempts      integer     NOT NULL DEFAULT 0,
    -- A re-driven dead letter gets a fresh set of retries: those after this many attempts.
    redriven_at_attempt integer NOT NULL DEFAULT 0,
    last_error    text,
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz,
    PRIMARY KEY (tenant_id, delivery_id)
);
CREATE INDEX deliveries_by_ticket ON deliveries (tenant_id, ticket_id, created_at);
CREATE INDEX deliveries_by_recipient ON deliveries (tenant_id, recipient, created_at);
CREATE INDEX deliveries_dead ON deliveries (tenant_id, created_at) WHERE state = 'dead';
SELECT helpdesk_isolate('deliveries');

-- Every try of every delivery: the delivery log's "when, through what, with what outcome".
CREATE TABLE delivery_attempts (
    tenant_id   text        NOT NULL,
    delivery_id uuid        NOT NULL,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('sent', 'temporary', 'permanent', 'cancelled')),
    detail      text,
    PRIMARY KEY (tenant_id, delivery_id, attempt)  -- attempts keep counting after a re-drive
);
SELECT helpdesk_isolate('delivery_attempts');
