-- The transactional outbox of a service that is not event-sourced: it writes its events
-- here in the same transaction as its state, and the same relay publishes them (see
-- outbox.py). Same columns and the same lock discipline as `events`; a row is deleted once
-- it is published.
CREATE TABLE outbox (
    position        bigserial   NOT NULL UNIQUE,
    tenant_id       text        NOT NULL,
    stream_id       uuid,       -- the envelope's aggregate id and version, when it has them
    version         integer,
    event_id        uuid        PRIMARY KEY,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    producer        text        NOT NULL,
    correlation_id  uuid        NOT NULL,
    causation_id    uuid,
    partition_key   text        NOT NULL,
    payload         jsonb       NOT NULL,
    traceparent     text
);

CREATE TABLE IF NOT EXISTS outbox_checkpoints (
    relay       text        PRIMARY KEY,
    position    bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
