-- Durable timers (timers.py): one row per pending timer, in the service's own database, so a
-- timer is set in the same transaction as the state that needs it and survives restarts.
-- (kind, tenant_id, key) names a timer: scheduling it again moves it (an upsert), firing
-- deletes it in the transaction that applies its effects. The tenant is part of the name, so
-- tenants with the same key (a ticket number, an agent id) never touch each other's timers.
CREATE TABLE timers (
    kind        text        NOT NULL,
    key         text        NOT NULL,
    tenant_id   text        NOT NULL,
    due_at      timestamptz NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}',
    -- Failed firings so far and the last error: a failing timer is pushed back, not spun on.
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    -- The W3C trace context of what scheduled it, continued by what it causes when it fires.
    traceparent text,
    PRIMARY KEY (kind, tenant_id, key)
);

-- The claim reads `WHERE due_at <= now ORDER BY due_at LIMIT n` and the run loop reads the
-- earliest due_at: both walk this index from its start and stop after a few entries, so
-- timers far in the future cost nothing but their index entry while they wait.
CREATE INDEX timers_due ON timers (due_at);
