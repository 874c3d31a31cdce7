-- The verdicts of the tickets' SLA clocks (sla.events.v1): breaches count against a
-- customer's health; elapsed times (business time, as the SLA service counts it) feed the
-- agents' and teams' goals.
CREATE TABLE sla_clocks (
    tenant_id       text        NOT NULL,
    clock_id        uuid        NOT NULL,
    ticket_id       uuid        NOT NULL,
    metric          text        NOT NULL,
    verdict         text        NOT NULL DEFAULT 'none'
                    CHECK (verdict IN ('achieved', 'breached', 'none')),
    elapsed_seconds bigint,
    decided_at      timestamptz,
    assignee_id     text,
    group_id        text,
    PRIMARY KEY (tenant_id, clock_id)
);
CREATE INDEX sla_clocks_by_ticket ON sla_clocks (tenant_id, ticket_id);
CREATE INDEX sla_clocks_decided ON sla_clocks (tenant_id, metric, decided_at);
SELECT helpdesk_isolate('sla_clocks');

-- Each customer's health as last evaluated, with its reasons; `at_risk` remembers that
-- CustomerAtRisk was published for the current drop (domain/health.py).
CREATE TABLE customer_health (
    tenant_id       text        NOT NULL,
    customer_id     text        NOT NULL,
    organisation_id text,
    health          real        NOT NULL,
    reasons         jsonb       NOT NULL,
    at_risk         boolean     NOT NULL DEFAULT false,
    evaluated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
CREATE INDEX customer_health_lowest ON customer_health (tenant_id, health);
CREATE INDEX customer_health_by_organisation ON customer_health (tenant_id, organisation_id);
CREATE INDEX customer_health_stale ON customer_health (evaluated_at);
SELECT helpdesk_isolate('customer_health');

-- Customers to evaluate again: something about them changed. The health job takes them in
-- chunks (SKIP LOCKED: the replicas share the work); a customer marked twice is one row.
CREATE TABLE health_due (
    tenant_id   text        NOT NULL,
    customer_id text        NOT NULL,
    since       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, customer_id)
);
SELECT helpdesk_isolate('health_due');

ALTER TABLE flags ADD COLUMN organisation_id text;
CREATE INDEX flags_by_customer ON flags (tenant_id, customer_id) WHERE state <> 'resolved';
CREATE INDEX answers_by_organisation ON answers (tenant_id, organisation_id, answered_at)
    WHERE organisation_id IS NOT NULL;
CREATE INDEX tickets_by_organisation ON tickets (tenant_id, organisation_id, opened_at)
    WHERE organisation_id IS NOT NULL;
