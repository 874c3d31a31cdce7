-- Business calendars and SLA policies: every save is a new version (spec NULL: deleted).
-- Clocks name the versions they were computed with, so old versions are never changed.
-- Every save also takes the tenant's next configuration revision, and every ticket event
-- applied records the revision it was applied under: a rebuild replays each event under
-- the configuration it first met.
CREATE TABLE tenant_revisions (
    tenant_id   text        PRIMARY KEY,
    revision    bigint      NOT NULL
);

CREATE TABLE calendars (
    tenant_id   text        NOT NULL,
    calendar_id text        NOT NULL,
    version     integer     NOT NULL,
    revision    bigint      NOT NULL,
    spec        jsonb,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    saved_by    text        NOT NULL,
    PRIMARY KEY (tenant_id, calendar_id, version)
);

CREATE TABLE policies (
    tenant_id   text        NOT NULL,
    policy_id   text        NOT NULL,
    version     integer     NOT NULL,
    revision    bigint      NOT NULL,
    spec        jsonb,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    saved_by    text        NOT NULL,
    PRIMARY KEY (tenant_id, policy_id, version)
);

-- Per tenant: how long past the watermark a breach still waits, for events stamped before
-- they are published (intake messages back-dated to when the customer wrote). An event
-- later than that revises the verdict with an event of its own.
CREATE TABLE tenant_settings (
    tenant_id        text        PRIMARY KEY,
    allowed_lateness interval    NOT NULL DEFAULT '0',
    saved_at         timestamptz NOT NULL DEFAULT now(),
    saved_by         text        NOT NULL
);

-- The SLA service's view of each ticket: what policies match on, fed by ticket events.
CREATE TABLE sla_tickets (
    ticket_id       uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    number          bigint      NOT NULL,
    priority        text        NOT NULL,
    channel         text        NOT NULL,
    type            text        NOT NULL,
    tags            jsonb       NOT NULL,
    group_id        text,
    organisation_id text,
    tier            text,
    status          text        NOT NULL,
    assignee_id     text,
    opened_at       timestamptz NOT NULL,
    version         integer     NOT NULL,
    cycles          jsonb       NOT NULL
);
CREATE INDEX sla_tickets_opened ON sla_tickets (tenant_id, opened_at);
CREATE INDEX sla_tickets_backlog ON sla_tickets (tenant_id)
    WHERE status IN ('new', 'open', 'pending', 'on_hold');

-- One row per clock (one run of one metric on one ticket), kept after it ends: its verdict,
-- its provenance (policy and calendar versions, the events that started and ended it) and
-- its pause ledger are what reports and disputes read.
CREATE TABLE clocks (
    clock_id         uuid        PRIMARY KEY,
    tenant_id        text        NOT NULL,
    ticket_id        uuid        NOT NULL,
    -- The partition of ticketing.tickets.v1 the ticket's events travel on: a breach waits
    -- for that partition's watermark.
    partition        integer     NOT NULL,
    metric           text        NOT NULL,
    cycle            integer     NOT NULL,
    state            text        NOT NULL,
    policy_id        text        NOT NULL,
    policy_version   integer     NOT NULL,
    calendar_id      text,
    calendar_version integer,
    business_hours   boolean     NOT NULL,
    target           interval    NOT NULL,
    thresholds       jsonb       NOT NULL,
    pause_on         jsonb       NOT NULL,
    started_at       timestamptz NOT NULL,
    started_by       uuid        NOT NULL,
    elapsed          interval    NOT NULL,
    since            timestamptz,
    deadline         timestamptz,
    breached_at      timestamptz,
    warned           jsonb       NOT NULL,
    ended_at         timestamptz,
    ended_by         uuid,
    pauses           jsonb       NOT NULL
);
CREATE INDEX clocks_of_ticket ON clocks (ticket_id);
CREATE INDEX clocks_open ON clocks (ticket_id) WHERE state IN ('running', 'paused');
-- The breach sweep: running clocks not breached yet, by partition and deadline.
CREATE INDEX clocks_due ON clocks (partition, deadline)
    WHERE state = 'running' AND breached_at IS NULL;

-- Reports: clocks by the moment their outcome was decided.
CREATE INDEX clocks_decided ON clocks (tenant_id, (coalesce(breached_at, ended_at)))
    WHERE state = 'achieved' OR breached_at IS NOT NULL;

-- The last watermark read on each partition of ticketing.tickets.v1: every ticket event of
-- that partition that occurred up to `up_to` has been applied.
CREATE TABLE watermarks (
    partition   integer     PRIMARY KEY,
    partitions  integer     NOT NULL,
    up_to       timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The ticket events this service consumed, as they came: its own input log, so that a
-- rebuild or a what-if replay never depends on a Kafka topic's retention.
CREATE TABLE ticket_events (
    position    bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL,
    tenant_id   text        NOT NULL,
    ticket_id   uuid        NOT NULL,
    version     integer,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    revision    bigint      NOT NULL,
    envelope    jsonb       NOT NULL
);
CREATE INDEX ticket_events_of_ticket ON ticket_events (ticket_id, position);
