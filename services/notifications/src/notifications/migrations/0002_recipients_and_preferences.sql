-- What the rules resolve audiences against: each ticket's assignee, group, followers,
-- priority and the account manager of its requester's organisation, from its events.
ALTER TABLE tickets
    ADD COLUMN assignee_id        text,
    ADD COLUMN group_id           text,
    ADD COLUMN followers          text[] NOT NULL DEFAULT '{}',
    ADD COLUMN account_manager_id text,
    ADD COLUMN priority           text   NOT NULL DEFAULT 'normal';

-- When a delivery is due (later than its decision when quiet or business hours hold it).
ALTER TABLE deliveries ADD COLUMN scheduled_for timestamptz;

-- Contact preferences per person ("agent:<id>", "customer:<id>"), administered over the
-- API. Agents' addresses are kept here; a customer's email comes sealed with the ticket.
CREATE TABLE contacts (
    tenant_id    text        NOT NULL,
    person       text        NOT NULL,
    channels     text[]      NOT NULL DEFAULT '{email}',
    language     text,
    time_zone    text        NOT NULL DEFAULT 'UTC',
    quiet_from   time,
    quiet_until  time,
    opted_out    text[]      NOT NULL DEFAULT '{}',
    email        text,
    webhook_url  text,
    messenger_id text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, person)
);
SELECT helpdesk_isolate('contacts');

-- A group's team leads (agent ids): they hear of breaches in their group.
CREATE TABLE group_leads (
    tenant_id text   NOT NULL,
    group_id  text   NOT NULL,
    leads     text[] NOT NULL,
    PRIMARY KEY (tenant_id, group_id)
);
SELECT helpdesk_isolate('group_leads');

-- A tenant's changes to the default rules (domain/notices.py), one row per event type.
CREATE TABLE rules (
    tenant_id  text        NOT NULL,
    event_type text        NOT NULL,
    audiences  text[]      NOT NULL,
    enabled    boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_type)
);
SELECT helpdesk_isolate('rules');

-- A tenant's business hours, which agents' escalations wait for unless urgent.
CREATE TABLE business_hours (
    tenant_id   text   NOT NULL PRIMARY KEY,
    time_zone   text   NOT NULL,
    days        int[]  NOT NULL,
    start_time  time   NOT NULL,
    end_time    time   NOT NULL
);
SELECT helpdesk_isolate('business_hours');
