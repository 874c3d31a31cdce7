-- The agents' read model: one row per ticket, the aggregate's folded state.
-- Written in the same transaction as the events (an inline projection) and rebuilt from
-- the event log by `python -m ticketing rebuild`.
CREATE TABLE ticket_list (
    tenant_id        text        NOT NULL,
    ticket_id        uuid        NOT NULL,
    number           bigint      NOT NULL,
    version          integer     NOT NULL,
    subject          text        NOT NULL,
    status           text        NOT NULL,
    priority         text        NOT NULL,
    priority_rank    smallint    NOT NULL,
    type             text        NOT NULL,
    channel          text        NOT NULL,
    requester_id     text        NOT NULL,
    requester_name   text,
    requester_email  text,
    organisation_id  text,
    tier             text,
    assignee_id      text,
    group_id         text,
    tags             text[]      NOT NULL,
    custom_fields    jsonb       NOT NULL,
    followers        text[]      NOT NULL,
    merged_into      uuid,
    problem_id       uuid,
    incidents        uuid[]      NOT NULL,
    public_replies   integer     NOT NULL,
    customer_replies integer     NOT NULL,
    internal_notes   integer     NOT NULL,
    opened_at        timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    solved_at        timestamptz,
    closed_at        timestamptz,
    search           tsvector    NOT NULL,  -- subject, description and every message
    PRIMARY KEY (tenant_id, ticket_id)
);

CREATE UNIQUE INDEX ticket_list_number ON ticket_list (tenant_id, number);
CREATE INDEX ticket_list_updated ON ticket_list (tenant_id, updated_at DESC, ticket_id);
CREATE INDEX ticket_list_status ON ticket_list (tenant_id, status, updated_at DESC);
CREATE INDEX ticket_list_assignee ON ticket_list (tenant_id, assignee_id, updated_at DESC);
CREATE INDEX ticket_list_tags ON ticket_list USING gin (tags);
CREATE INDEX ticket_list_search ON ticket_list USING gin (search);
