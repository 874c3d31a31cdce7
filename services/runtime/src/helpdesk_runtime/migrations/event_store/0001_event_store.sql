-- The event store is also the outbox: the relay tails it by `position`.
-- Appends take `LOCK TABLE events IN EXCLUSIVE MODE` (see eventstore.py), so positions
-- become visible in the order they were taken and a reader never passes over a gap
-- that a slower transaction fills in later.
CREATE TABLE events (
    position        bigserial   NOT NULL UNIQUE,
    tenant_id       text        NOT NULL,
    stream_id       uuid        NOT NULL,
    version         integer     NOT NULL CHECK (version > 0),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    producer        text        NOT NULL,
    correlation_id  uuid        NOT NULL,
    causation_id    uuid,
    partition_key   text        NOT NULL,  -- the Kafka key, chosen by the contracts at append
    payload         jsonb       NOT NULL,
    -- A second writer of the same version violates this key: an optimistic-concurrency conflict.
    PRIMARY KEY (stream_id, version)
);

CREATE INDEX events_tenant_stream ON events (tenant_id, stream_id, version);

CREATE TABLE outbox_checkpoints (
    relay       text        PRIMARY KEY,
    position    bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
