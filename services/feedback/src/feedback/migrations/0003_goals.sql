-- Supervisors' targets per agent and team (domain/goals.py).
CREATE TABLE goals (
    tenant_id  text        NOT NULL,
    scope      text        NOT NULL CHECK (scope IN ('agent', 'group')),
    subject_id text        NOT NULL,
    metric     text        NOT NULL,
    target     real        NOT NULL,
    period     text        NOT NULL CHECK (period IN ('week', 'month', 'quarter')),
    set_by     text        NOT NULL,
    set_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, scope, subject_id, metric)
);
SELECT helpdesk_isolate('goals');
CREATE INDEX sla_clocks_by_assignee ON sla_clocks (tenant_id, assignee_id, metric, decided_at);
