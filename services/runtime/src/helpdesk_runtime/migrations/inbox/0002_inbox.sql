-- Idempotent consumers: a row per (consumer, event) written in the same transaction as
-- the effect; a duplicate key means the event was already applied.
CREATE TABLE inbox (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    tenant_id     text        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
